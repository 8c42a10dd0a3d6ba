/**
 * The Cookie on `req.session.cookie`: one session's cookie settings in express-session's shape.
 * Changes are kept as overrides of the configured defaults, copied on first write, so an
 * untouched cookie costs no object of its own.
 */
import type { CookieAttributes, ResolvedCookie } from './cookie.js'
import type { CookieOverrides } from './store.js'

// Private-field accessors, assigned in the class's static block: module-internal, not API.
/** Whether a setting was changed during this request. */
export let cookieChanged: (cookie: Cookie) => boolean
/** The settings that differ from the defaults (the record's own object until the first change). */
export let cookieOverrides: (cookie: Cookie) => CookieOverrides
/** The attributes for this response, the expiry capped at `cap` (epoch ms) when given. */
export let resolveCookie: (cookie: Cookie, cap: number | undefined) => ResolvedCookie

/**
 * The cookie settings of one session, in express-session's Cookie shape. Changing one
 * (`req.session.cookie.maxAge = 30 * 24 * 3_600_000`) is saved with the session and applies to
 * that session only.
 *
 * @example
 * ```ts
 * if (req.body.remember) req.session.cookie.maxAge = 30 * 24 * 3600 * 1000
 * ```
 */
export class Cookie {
  #originalMaxAge: number | null
  /** Epoch ms; the Date that `expires` returns is made only when asked for. */
  #expiresAt: number | null
  #expiresDate: Date | null = null
  #domain: string | undefined
  #path: string
  #httpOnly: boolean
  #secure: boolean | 'auto'
  #sameSite: CookieAttributes['sameSite']
  #partitioned: boolean | undefined
  #priority: CookieAttributes['priority']
  /** Shared with the record it came from until the first change, then this cookie's own copy. */
  #overrides: CookieOverrides
  #changed = false
  #request: { readonly secure: boolean } | undefined

  /**
   * @internal Built by the middleware from the request's defaults and the stored overrides;
   * `request.secure` resolves `secure: 'auto'`, and is read only when asked for.
   */
  constructor(
    defaults: CookieAttributes,
    overrides: CookieOverrides = NO_OVERRIDES,
    now = Date.now(),
    request?: { readonly secure: boolean },
  ) {
    this.#request = request
    this.#overrides = overrides
    const o = overrides
    // `in`, not `??`: an override set to undefined (domain = undefined) still beats the default.
    this.#originalMaxAge =
      'originalMaxAge' in o ? (o.originalMaxAge ?? null) : (defaults.maxAge ?? null)
    this.#expiresAt = this.#originalMaxAge === null ? null : now + this.#originalMaxAge
    this.#domain = 'domain' in o ? o.domain : defaults.domain
    this.#path = ('path' in o ? o.path : defaults.path) ?? '/'
    this.#httpOnly = ('httpOnly' in o ? o.httpOnly : defaults.httpOnly) ?? true
    this.#secure = ('secure' in o ? o.secure : defaults.secure) ?? false
    this.#sameSite = 'sameSite' in o ? o.sameSite : defaults.sameSite
    this.#partitioned = 'partitioned' in o ? o.partitioned : defaults.partitioned
    this.#priority = 'priority' in o ? o.priority : defaults.priority
  }

  /** The cookie's lifetime in ms as set, or `null` for a browser-session cookie. */
  get originalMaxAge(): number | null {
    return this.#originalMaxAge
  }
  set originalMaxAge(ms: number | null) {
    this.maxAge = ms
  }

  /** Milliseconds left until the cookie expires, or `null` for a browser-session cookie. */
  get maxAge(): number | null {
    return this.#expiresAt === null ? null : this.#expiresAt - Date.now()
  }
  /** Also takes express-session's other spellings: `false` for none, or a Date to expire at. */
  set maxAge(value: number | null | false | Date) {
    const ms =
      value === false
        ? null
        : value instanceof Date
          ? Math.max(0, value.getTime() - Date.now())
          : value
    if (ms !== null && !(typeof ms === 'number' && Number.isFinite(ms) && ms >= 0)) {
      throw new TypeError(`cookie.maxAge must be a number of ms >= 0 or null, got ${String(value)}`)
    }
    this.#originalMaxAge = ms
    // A Date is kept as given, so a date in the past (expires = new Date(0)) reaches the browser.
    this.#expiresAt = ms === null ? null : value instanceof Date ? value.getTime() : Date.now() + ms
    // `expires` returns the very Date it was given.
    if (value instanceof Date) this.#expiresDate = value
    this.#override('originalMaxAge', ms)
  }

  get expires(): Date | null {
    if (this.#expiresAt === null) return null
    if (this.#expiresDate === null || this.#expiresDate.getTime() !== this.#expiresAt)
      this.#expiresDate = new Date(this.#expiresAt)
    return this.#expiresDate
  }
  /** `null` (or express-session's `false`) makes a browser-session cookie. */
  set expires(date: Date | null | false) {
    this.maxAge = date === null || date === false ? null : date
  }

  get domain(): string | undefined {
    return this.#domain
  }
  set domain(value: string | undefined) {
    this.#domain = value
    this.#override('domain', value)
  }

  get path(): string {
    return this.#path
  }
  set path(value: string) {
    this.#path = value
    this.#override('path', value)
  }

  get httpOnly(): boolean {
    return this.#httpOnly
  }
  set httpOnly(value: boolean) {
    this.#httpOnly = value
    this.#override('httpOnly', value)
  }

  /** With `'auto'`, whether this request came over HTTPS. */
  get secure(): boolean | 'auto' {
    return this.#secure === 'auto' && this.#request ? this.#request.secure : this.#secure
  }
  set secure(value: boolean | 'auto') {
    this.#secure = value
    this.#override('secure', value)
  }

  get sameSite(): CookieAttributes['sameSite'] {
    return this.#sameSite
  }
  set sameSite(value: CookieAttributes['sameSite']) {
    this.#sameSite = value
    this.#override('sameSite', value)
  }

  get partitioned(): boolean | undefined {
    return this.#partitioned
  }
  set partitioned(value: boolean | undefined) {
    this.#partitioned = value
    this.#override('partitioned', value)
  }

  get priority(): CookieAttributes['priority'] {
    return this.#priority
  }
  set priority(value: CookieAttributes['priority']) {
    this.#priority = value
    this.#override('priority', value)
  }

  /** Restarts the lifetime: expires = now + originalMaxAge. Not a change to save by itself. */
  resetMaxAge(now = Date.now()): void {
    this.#expiresAt = this.#originalMaxAge === null ? null : now + this.#originalMaxAge
  }

  /** express-session's `cookie.data`: the settings as a plain object. */
  get data(): Record<string, unknown> {
    return {
      originalMaxAge: this.#originalMaxAge,
      expires: this.expires,
      secure: this.#secure,
      httpOnly: this.#httpOnly,
      domain: this.#domain,
      path: this.#path,
      sameSite: this.#sameSite,
      partitioned: this.#partitioned,
      priority: this.#priority,
    }
  }

  toJSON(): Record<string, unknown> {
    return this.data
  }

  #override<K extends keyof CookieOverrides>(key: K, value: CookieOverrides[K]): void {
    // Setting what is already stored (expires = null on every request) changes nothing.
    if (Object.hasOwn(this.#overrides, key) && this.#overrides[key] === value) return
    // Copy on write: the record's overrides stay as loaded.
    if (!this.#changed) this.#overrides = { ...this.#overrides }
    this.#overrides[key] = value
    this.#changed = true
  }

  static {
    cookieChanged = (cookie) => cookie.#changed
    cookieOverrides = (cookie) => cookie.#overrides
    resolveCookie = (cookie, cap) => {
      let expiresAt = cookie.#expiresAt
      if (cap !== undefined && (expiresAt === null || expiresAt > cap)) expiresAt = cap
      return {
        expires: expiresAt === null ? null : new Date(expiresAt),
        domain: cookie.#domain,
        path: cookie.#path,
        httpOnly: cookie.#httpOnly,
        secure: cookie.secure === true,
        sameSite: cookie.#sameSite,
        partitioned: cookie.#partitioned,
        priority: cookie.#priority,
      }
    }
  }
}

/** The overrides of a cookie that has none: shared, never written. */
export const NO_OVERRIDES: CookieOverrides = Object.freeze({})
