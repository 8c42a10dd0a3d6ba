/**
 * `req.sessionStore` under the drop-in, typed as @types/express-session types it: the store the
 * app passed, with express-session's callback API and `generate`. Also the cookie as stored in
 * a session (`SessionData['cookie']`), which stores read and write.
 */
import type { Store } from './store-base.js'

/**
 * A session's cookie as it is stored and as stores see it (`SessionData['cookie']`), the
 * shape of express-session's Cookie: `req.session.cookie` is one, and so is a plain object
 * with `originalMaxAge`.
 *
 * @example
 * ```ts
 * const empty: SessionData['cookie'] = { expires: null, originalMaxAge: null }
 * ```
 */
export type SessionCookieData = {
  /** The cookie's lifetime in ms as set, or null for a browser-session cookie. */
  originalMaxAge: number | null
  maxAge?: number | null
  /** Accepted and ignored, as express-session does: the session cookie is always signed. */
  signed?: boolean
  /** When the cookie expires (stored sessions that went through JSON hold an ISO string). */
  expires?: Date | null | false
  httpOnly?: boolean
  path?: string
  domain?: string
  secure?: boolean | 'auto'
  sameSite?: boolean | 'lax' | 'strict' | 'none'
  partitioned?: boolean
  priority?: 'low' | 'medium' | 'high'
}

type Err = any // stores pass whatever their driver throws, as @types/express-session types it

/**
 * `req.sessionStore` with the drop-in: the store you passed (the drop-in's MemoryStore by
 * default), with express-session's callback API. A concord store passed to the drop-in is
 * there as itself: cast it (`req.sessionStore as unknown as RedisStore`).
 *
 * @example
 * ```ts
 * req.sessionStore.get(req.sessionID, (err, stored) => {
 *   if (err) return next(err)
 *   res.json({ views: stored?.views })
 * })
 * ```
 */
export interface SessionStore<Data = Record<string, any>> extends Store {
  get(sid: string, callback: (err: Err, session?: Data | null) => void): void
  set(sid: string, session: Data, callback?: (err?: Err) => void): void
  destroy(sid: string, callback?: (err?: Err) => void): void
  touch?(sid: string, session: Data, callback?: (err?: Err) => void): void
  all?(callback: (err: Err, obj?: Data[] | { [sid: string]: Data } | null) => void): void
  length?(callback: (err: Err, length?: number) => void): void
  clear?(callback?: (err?: Err) => void): void
  /**
   * Always throws a TypeError. express-session's `generate(req)` swaps in a new session
   * synchronously and leaves the old one in the store; here `req.session.regenerate(callback)`
   * does the same safely: it destroys the old session and calls back once the new one is in
   * place.
   */
  generate(req: unknown): never
}

/**
 * Puts `generate` on the store the drop-in exposes as `req.sessionStore`, as express-session
 * does, so a call gets a TypeError that says what to use instead of "not a function".
 *
 * @example
 * ```ts
 * exposeStore(legacyStore)
 * legacyStore.generate(req) // TypeError: ... use req.session.regenerate(callback) ...
 * ```
 */
export function exposeStore(store: unknown): void {
  if ((typeof store !== 'object' && typeof store !== 'function') || store === null) return
  Object.defineProperty(store, 'generate', {
    configurable: true,
    enumerable: false,
    writable: true,
    value: function generate(): never {
      throw new TypeError(
        'req.sessionStore.generate(req) is not supported by concord-session/express-session: ' +
          'use req.session.regenerate(callback), which destroys the old session and gives ' +
          'the request a new one',
      )
    },
  })
}
