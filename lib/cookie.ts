/**
 * The session cookie codec: pure functions over strings, with no req or res.
 *
 * The signed value is express-session's `s:<id>.<mac>` (HMAC-SHA256, base64 without padding),
 * so a cookie issued by express-session with the same secret stays valid after switching.
 */
import { sign, unsign } from 'cookie-signature'
import { rejectUnknownKeys } from './check-options.js'
import { isValidSessionId, type CookieOverrides } from './store.js'

export { clearCookie, serializeCookie } from './set-cookie.js'

/**
 * Cookie attributes, as options: the per-session settings a store keeps, with the lifetime
 * spelled `maxAge` as express-session's options spell it.
 */
export interface CookieAttributes extends Omit<CookieOverrides, 'originalMaxAge'> {
  /** Lifetime in ms. Unset or `null` makes a browser-session cookie. */
  maxAge?: number | null
}

/** What serializeCookie needs: the attributes resolved for one response. */
export interface ResolvedCookie {
  expires: Date | null
  domain?: string | undefined
  path: string
  httpOnly: boolean
  secure: boolean
  sameSite?: boolean | 'lax' | 'strict' | 'none' | undefined
  partitioned?: boolean | undefined
  priority?: 'low' | 'medium' | 'high' | undefined
}

const COOKIE_ATTRIBUTES = [
  'maxAge',
  'domain',
  'path',
  'httpOnly',
  'secure',
  'sameSite',
  'partitioned',
  'priority',
] as const

/** A signing secret: a string, or bytes (e.g. `crypto.randomBytes(32)`). */
export type Secret = string | Buffer

/** Longest cookie value we look at; browsers cap a cookie at about 4096 bytes. */
const MAX_VALUE_LENGTH = 4096

/**
 * Every value of the cookie called `name` in a Cookie header, in header order.
 * Browsers send several when cookies with one name differ in Path or Domain
 * (RFC 6265 §5.4), so the caller must not assume the first is ours.
 *
 * @example
 * ```ts
 * readCookieValues('a=1; sid=x; sid=y', 'sid') // ['x', 'y']
 * ```
 */
export function readCookieValues(header: string | undefined, name: string): string[] {
  const values: string[] = []
  if (!header) return values
  let start = 0
  while (start < header.length) {
    let end = header.indexOf(';', start)
    if (end === -1) end = header.length
    const eq = header.indexOf('=', start)
    if (eq !== -1 && eq < end && header.slice(start, eq).trim() === name) {
      let value = header.slice(eq + 1, end).trim()
      if (value.length <= MAX_VALUE_LENGTH) {
        if (value.startsWith('"') && value.endsWith('"') && value.length >= 2)
          value = value.slice(1, -1)
        values.push(decode(value))
      }
    }
    start = end + 1
  }
  return values
}

function decode(value: string): string {
  if (!value.includes('%')) return value
  try {
    return decodeURIComponent(value)
  } catch {
    return value // malformed escapes: leave as is, and let the signature check reject it
  }
}

/**
 * Signs a session id as `s:<id>.<mac>`.
 *
 * @example
 * ```ts
 * signSessionId('abc', 'keyboard cat') // 's:abc.<44-char mac>'
 * ```
 */
export function signSessionId(id: string, secret: Secret): string {
  return `s:${sign(id, secret)}`
}

/** A verified session id, and whether a secret other than the first verified it. */
export interface VerifiedId {
  id: string
  /** Signed with an older secret: the cookie should be re-issued under the first one. */
  rotated: boolean
  /** The verified `s:<id>.<mac>`, reusable as the cookie's value while id and secret stay. */
  signed?: string
}

/**
 * Verifies one signed value against each secret in turn. cookie-signature compares the whole
 * value in constant time (crypto.timingSafeEqual), so trailing bytes after the MAC fail.
 *
 * @example
 * ```ts
 * verifySessionId(signSessionId('abc', 'new'), ['new', 'old']) // { id: 'abc', rotated: false }
 * verifySessionId('s:abc.forged', ['new'])                      // null
 * ```
 */
export function verifySessionId(
  value: string,
  secrets: readonly Secret[],
  isValidId: (id: unknown) => id is string = isValidSessionId,
): VerifiedId | null {
  if (!value.startsWith('s:')) return null
  const signed = value.slice(2)
  for (let i = 0; i < secrets.length; i++) {
    const id = unsign(signed, secrets[i]!)
    if (id !== false) return isValidId(id) ? { id, rotated: i > 0, signed: value } : null
  }
  return null
}

/**
 * The session id from a Cookie header: the first value named `name` whose signature verifies.
 * A cookie that is unsigned, tampered, oversized or malformed yields `null`, never an error.
 *
 * @example
 * ```ts
 * readSessionCookie(req.headers.cookie, 'connect.sid', ['s3cret']) // { id, rotated } | null
 * ```
 */
export function readSessionCookie(
  header: string | undefined,
  name: string,
  secrets: readonly Secret[],
  isValidId: (id: unknown) => id is string = isValidSessionId,
  cache?: VerifiedIdCache,
): VerifiedId | null {
  if (!header) return null
  // The common header holds one cookie of this name: find it without building a list.
  const at = header.indexOf(name + '=')
  if (at !== -1 && startsPair(header, at) && header.indexOf(name + '=', at + 1) === -1) {
    let end = header.indexOf(';', at)
    if (end === -1) end = header.length
    let value = header.slice(at + name.length + 1, end).trim()
    if (value.length > MAX_VALUE_LENGTH) return null
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"'))
      value = value.slice(1, -1)
    return cache
      ? cache.verifyEncoded(value, secrets, isValidId)
      : verifySessionId(decode(value), secrets, isValidId)
  }
  for (const value of readCookieValues(header, name)) {
    const verified = cache
      ? cache.verify(value, secrets, isValidId)
      : verifySessionId(value, secrets, isValidId)
    if (verified) return verified
  }
  return null
}

/** Whether `at` starts a `name=value` pair: the header's start, or after a ';' and spaces. */
function startsPair(header: string, at: number): boolean {
  let i = at - 1
  while (i >= 0 && (header[i] === ' ' || header[i] === '\t')) i--
  return i < 0 || header[i] === ';'
}

/**
 * Remembers cookie values whose signature verified, so a returning browser's cookie costs a
 * Map lookup instead of an HMAC. Bounded (oldest out first). The cache belongs to one list of
 * secrets: presented with any other list it empties itself, so a secret that was removed or
 * replaced can never vouch for a value again.
 *
 * @example
 * ```ts
 * const cache = new VerifiedIdCache(10_000)
 * cache.verify(cookieValue, ['s3cret']) // verifies, then remembers
 * cache.verify(cookieValue, ['s3cret']) // a lookup
 * cache.verify(cookieValue, ['other'])  // secrets changed: emptied, verified again (and rejected)
 * ```
 */
export class VerifiedIdCache {
  #secrets: readonly Secret[] | null = null
  #isValidId: ((id: unknown) => id is string) | null = null
  readonly #entries = new Map<string, VerifiedId>()
  /** The same, by the value as the header holds it, for values with percent-escapes. */
  readonly #encoded = new Map<string, VerifiedId>()

  constructor(readonly max = 10_000) {
    if (!Number.isInteger(max) || max < 1)
      throw new TypeError(`VerifiedIdCache: max must be a positive integer, got ${String(max)}`)
  }

  verify(
    value: string,
    secrets: readonly Secret[],
    isValidId: (id: unknown) => id is string = isValidSessionId,
  ): VerifiedId | null {
    this.#use(secrets, isValidId)
    const hit = this.#entries.get(value)
    if (hit !== undefined) return hit
    const verified = verifySessionId(value, secrets, isValidId)
    if (verified) remember(this.#entries, value, verified, this.max)
    return verified
  }

  /**
   * {@link verify} of a value as the Cookie header holds it, percent-encoded: remembered as
   * such, so a returning browser's cookie is not decoded again either.
   */
  verifyEncoded(
    encoded: string,
    secrets: readonly Secret[],
    isValidId: (id: unknown) => id is string = isValidSessionId,
  ): VerifiedId | null {
    if (!encoded.includes('%')) return this.verify(encoded, secrets, isValidId)
    this.#use(secrets, isValidId)
    const hit = this.#encoded.get(encoded)
    if (hit !== undefined) return hit
    const verified = this.verify(decode(encoded), secrets, isValidId)
    if (verified) remember(this.#encoded, encoded, verified, this.max)
    return verified
  }

  get size(): number {
    return this.#entries.size
  }

  /** Empties the cache when asked under other secrets or another id check than before. */
  #use(secrets: readonly Secret[], isValidId: (id: unknown) => id is string): void {
    if (secrets === this.#secrets && isValidId === this.#isValidId) return
    if (
      this.#secrets === null ||
      !sameList(secrets, this.#secrets) ||
      isValidId !== this.#isValidId
    ) {
      this.#entries.clear()
      this.#encoded.clear()
    }
    this.#secrets = secrets
    this.#isValidId = isValidId
  }
}

function remember(
  entries: Map<string, VerifiedId>,
  key: string,
  verified: VerifiedId,
  max: number,
): void {
  if (entries.size >= max) entries.delete(entries.keys().next().value as string)
  entries.set(key, verified)
}

function sameList(a: readonly Secret[], b: readonly Secret[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * Checks cookie attributes and the cookie-name prefixes, throwing a TypeError that says what
 * to change. Run at setup for static options, and per request for a `cookie` function.
 * Prefix rules: https://datatracker.ietf.org/doc/html/draft-ietf-httpbis-rfc6265bis#section-4.1.3
 *
 * @example
 * ```ts
 * validateCookieAttributes('__Host-sid', { secure: true, path: '/' }) // ok
 * validateCookieAttributes('__Host-sid', { domain: 'example.com' })   // throws TypeError
 * ```
 */
export function validateCookieAttributes(
  name: string,
  cookie: CookieAttributes,
  browserRules = true,
): void {
  const fail = (message: string): never => {
    throw new TypeError(`session cookie "${name}": ${message}`)
  }
  if (typeof cookie !== 'object' || cookie === null) fail('cookie options must be an object')
  const { maxAge, domain, path, httpOnly, secure, sameSite, partitioned, priority } = cookie
  if ('expires' in cookie && (cookie as { expires?: unknown }).expires !== undefined) {
    fail('cookie.expires is one fixed date for every session; set cookie.maxAge (ms) instead')
  }
  rejectUnknownKeys(`session cookie "${name}"`, cookie, COOKIE_ATTRIBUTES)
  if (
    maxAge !== undefined &&
    maxAge !== null &&
    !(typeof maxAge === 'number' && Number.isFinite(maxAge) && maxAge >= 0)
  ) {
    fail(`cookie.maxAge must be a number of milliseconds >= 0 or null, got ${String(maxAge)}`)
  }
  if (domain !== undefined && (typeof domain !== 'string' || !/^\.?[a-z0-9.-]+$/i.test(domain))) {
    fail(`cookie.domain must be a host name such as "example.com", got ${JSON.stringify(domain)}`)
  }
  if (
    path !== undefined &&
    (typeof path !== 'string' || !path.startsWith('/') || /[;\s]/.test(path))
  ) {
    fail(`cookie.path must start with "/" and hold no ";" or spaces, got ${JSON.stringify(path)}`)
  }
  if (httpOnly !== undefined && typeof httpOnly !== 'boolean')
    fail('cookie.httpOnly must be true or false')
  if (secure !== undefined && typeof secure !== 'boolean' && secure !== 'auto')
    fail('cookie.secure must be true, false or "auto"')
  if (
    sameSite !== undefined &&
    ![true, false, 'lax', 'strict', 'none'].includes(sameSite as never)
  ) {
    fail('cookie.sameSite must be "lax", "strict", "none", true or false')
  }
  if (partitioned !== undefined && typeof partitioned !== 'boolean')
    fail('cookie.partitioned must be true or false')
  if (priority !== undefined && !['low', 'medium', 'high'].includes(priority))
    fail('cookie.priority must be "low", "medium" or "high"')

  // Browsers reject SameSite=None and Partitioned cookies that are not Secure. (express-session
  // sends them anyway, and so does its drop-in: `browserRules` false.)
  if (browserRules && sameSite === 'none' && secure === false)
    fail('sameSite "none" needs secure: true (or "auto" behind HTTPS)')
  if (browserRules && partitioned && secure === false)
    fail('partitioned cookies need secure: true (or "auto" behind HTTPS)')

  if (name.startsWith('__Secure-') && secure !== true)
    fail('a "__Secure-" cookie needs cookie.secure: true')
  if (name.startsWith('__Host-')) {
    if (secure !== true) fail('a "__Host-" cookie needs cookie.secure: true')
    if (domain !== undefined) fail('a "__Host-" cookie must not set cookie.domain')
    if (path !== undefined && path !== '/') fail('a "__Host-" cookie needs cookie.path "/"')
  }
}
