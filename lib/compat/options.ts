/**
 * express-session's options, translated into the core's. Pure functions: whatever
 * express-session 1.19 accepts is accepted here and turned into what the core validates,
 * so the core's validation stays as strict as it is.
 */
import type { IncomingMessage } from 'node:http'
import type { CookieAttributes, Secret } from '../cookie.js'
import type { SessionOptions } from '../options.js'
import { isSecureRequest } from '../secure-request.js'

/**
 * Cookie options as express-session takes them: the core's, plus `expires` and sameSite `'auto'`.
 */
export interface ExpressSessionCookieOptions extends Omit<CookieAttributes, 'sameSite' | 'maxAge'> {
  /** Lifetime in ms; a Date sets the expiry instead, as `expires` does. */
  maxAge?: number | Date | null | false
  /**
   * One fixed date: each new session's cookie expires then (express-session advises maxAge
   * instead).
   */
  expires?: Date | null | false
  /** `'auto'`: None over HTTPS, Lax over HTTP. */
  sameSite?: CookieAttributes['sameSite'] | 'auto'
  /** express-session ignores other keys (e.g. `signed`, `encode`), and so does this. */
  [other: string]: unknown
}

/**
 * The options of express-session 1.19: the core's, with express-session's looser store, secret and
 * cookie.
 */
export interface ExpressSessionOptions extends Omit<
  SessionOptions,
  'store' | 'secret' | 'cookie' | 'genid'
> {
  /** Makes a new session id from the request (an Express `Request` under Express); may be async. */
  genid?(req: IncomingMessage): string | Promise<string>
  secret?: Secret | Secret[]
  /** express-session's old name for `name`. */
  key?: string
  /** An express-session store (get/set/destroy with callbacks) or a concord Store. */
  store?: unknown
  cookie?: ExpressSessionCookieOptions | ((req: IncomingMessage) => ExpressSessionCookieOptions)
  /**
   * For an express-session store: how many session ids' last written expiry this process
   * remembers, so `touchAfter` throttles stores whose `touch()` moves only their TTL. Default
   * 10 000; 0 turns it off. Passed to adaptLegacyStore; a concord Store rejects it.
   */
  rememberExpiries?: number
  /** express-session ignores unknown options, and so does the drop-in. */
  [other: string]: unknown
}

/** express-session's own cookie defaults: `new Cookie()` with no options. */
export const EXPRESS_SESSION_COOKIE: Readonly<CookieAttributes> = Object.freeze({
  path: '/',
  httpOnly: true,
  secure: false,
  maxAge: null,
})

/**
 * The core's options for these express-session options, and the static cookie when there is one.
 */
export interface TranslatedOptions {
  options: SessionOptions
  /**
   * The cookie options when they do not depend on the request (the adapter records them in the
   * blob).
   */
  staticCookie: CookieAttributes | undefined
}

/**
 * Translates express-session options for `createSessionMiddleware`. The store is left out:
 * the entry point resolves it. Throws a TypeError where express-session throws.
 *
 * @example
 * ```ts
 * translateOptions({ secret: 's', cookie: { expires: new Date('2030-01-01') }, rolling: 1 })
 * // { options: { secret: 's', rolling: true, cookie: (req) => ({ maxAge: <ms until 2030>, ... }) }, staticCookie: undefined }
 * ```
 */
export function translateOptions(input: ExpressSessionOptions | undefined): TranslatedOptions {
  const opts = input ?? {}
  if (typeof opts !== 'object') throw new TypeError('session(options): options must be an object')
  const options: SessionOptions = {}

  const name = opts.name || opts.key
  if (name) options.name = name
  // express-session: a falsy secret means "use cookie-parser's req.secret".
  if (Array.isArray(opts.secret) && opts.secret.length === 0) {
    throw new TypeError('secret option array must contain one or more strings')
  }
  if (opts.secret) options.secret = opts.secret
  if (opts.genid !== undefined) options.genid = opts.genid
  if (opts.proxy === true || opts.proxy === false) options.proxy = opts.proxy
  // express-session reads these as truthy or falsy; undefined keeps the default.
  if (opts.resave !== undefined) options.resave = Boolean(opts.resave)
  if (opts.saveUninitialized !== undefined)
    options.saveUninitialized = Boolean(opts.saveUninitialized)
  if (opts.rolling !== undefined) options.rolling = Boolean(opts.rolling)
  if (opts.unset) {
    if (opts.unset !== 'destroy' && opts.unset !== 'keep')
      throw new TypeError('unset option must be "destroy" or "keep"')
    options.unset = opts.unset
  }
  for (const key of [
    'absoluteTimeout',
    'idleTimeout',
    'maxSize',
    'saveTimeout',
    'touchAfter',
  ] as const) {
    if (opts[key] !== undefined) options[key] = opts[key]
  }
  if (opts.maxSessionsPerUser !== undefined) options.maxSessionsPerUser = opts.maxSessionsPerUser
  if (opts.onEvent !== undefined) options.onEvent = opts.onEvent
  if (opts.idHashKey !== undefined) options.idHashKey = opts.idHashKey
  if (opts.hashIds !== undefined) options.hashIds = opts.hashIds
  if (opts.encrypt !== undefined) options.encrypt = opts.encrypt

  const cookie = opts.cookie
  if (typeof cookie === 'function') {
    options.cookie = (req) => translateCookie(cookie(req), req, opts.proxy)
    return { options, staticCookie: undefined }
  }
  if (cookie !== undefined && cookie !== null && typeof cookie !== 'object') {
    throw new TypeError('argument options must be a object') // express-session's Cookie message
  }
  const source = cookie ?? {}
  if (dependsOnRequest(source)) {
    translateCookie(source, undefined, opts.proxy) // throws now, at setup, for an invalid date
    options.cookie = (req) => translateCookie(source, req, opts.proxy)
    return { options, staticCookie: undefined }
  }
  const attributes = translateCookie(source, undefined, opts.proxy)
  options.cookie = attributes
  return { options, staticCookie: { ...EXPRESS_SESSION_COOKIE, ...attributes } }
}

/**
 * `expires` is a fixed date (so maxAge shrinks per request) and sameSite 'auto' reads the request.
 */
function dependsOnRequest(cookie: ExpressSessionCookieOptions): boolean {
  return (
    (cookie.expires !== undefined && cookie.expires !== null && cookie.expires !== false) ||
    cookie.sameSite === 'auto'
  )
}

/**
 * One request's cookie attributes from express-session cookie options. As in express-session's
 * Cookie, keys apply in order, so of `expires` and `maxAge` the later one wins.
 *
 * @example
 * ```ts
 * translateCookie({ maxAge: 60_000, expires: new Date(Date.now() + 5_000) }) // { maxAge: ~5000 }
 * ```
 */
export function translateCookie(
  cookie: ExpressSessionCookieOptions,
  req?: IncomingMessage,
  proxy?: unknown,
): CookieAttributes {
  if (typeof cookie !== 'object' || cookie === null)
    throw new TypeError('argument options must be a object')
  const out: CookieAttributes = {}
  for (const key of Object.keys(cookie)) {
    const value = cookie[key]
    switch (key) {
      case 'maxAge':
        if (value === null || value === undefined || value === false) out.maxAge = null
        else if (value instanceof Date)
          out.maxAge = Math.max(0, validTime('maxAge', value) - Date.now())
        else if (typeof value === 'number') out.maxAge = Math.max(0, value)
        else throw new TypeError('maxAge must be a number or Date') // express-session's message
        break
      case 'expires':
        if (value instanceof Date)
          out.maxAge = Math.max(0, validTime('expires', value) - Date.now())
        else if (value === null || value === undefined || value === false) out.maxAge = null
        break
      case 'domain':
      case 'path':
        if (value !== undefined) out[key] = value as string
        break
      case 'httpOnly':
      case 'partitioned':
        if (value !== undefined) out[key] = Boolean(value)
        break
      case 'secure':
        if (value !== undefined) out.secure = value === 'auto' ? 'auto' : Boolean(value)
        break
      case 'priority':
        if (typeof value === 'string')
          out.priority = value.toLowerCase() as CookieAttributes['priority']
        break
      case 'sameSite':
        if (value === 'auto') {
          out.sameSite = req && isSecureRequest(req, proxy) ? 'none' : 'lax'
        } else if (typeof value === 'string') {
          out.sameSite = value.toLowerCase() as CookieAttributes['sameSite']
        } else if (typeof value === 'boolean') {
          out.sameSite = value
        }
        break
      default:
        break // express-session ignores other cookie keys
    }
  }
  return out
}

/** A Date's time, or a TypeError now rather than "option expires is invalid" on every response. */
function validTime(key: string, date: Date): number {
  const time = date.getTime()
  if (Number.isNaN(time)) throw new TypeError(`cookie.${key} is an invalid Date`)
  return time
}
