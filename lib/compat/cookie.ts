/**
 * express-session's `Cookie` as its module exports it: `new Cookie()` and `new Cookie(options)`
 * build a standalone cookie with express-session's defaults, and `cookie.serialize(name, value)`
 * writes a Set-Cookie value. It is the core's Cookie underneath, so `req.session.cookie`
 * (adopted by {@link adoptCookie}) is an instance too and has the same methods.
 */
import { serialize } from 'cookie'
import { Cookie as CoreCookie } from '../session.js'
import { EXPRESS_SESSION_COOKIE } from './options.js'

/**
 * express-session's Cookie.
 *
 * @example
 * ```ts
 * import { Cookie } from 'concord-session/express-session'
 * const cookie = new Cookie({ maxAge: 60_000, path: '/app' })
 * res.setHeader('Set-Cookie', cookie.serialize('theme', 'dark')) // 'theme=dark; Path=/app; Expires=...; HttpOnly'
 * ```
 */
export class Cookie extends CoreCookie {
  constructor(options?: Record<string, unknown>) {
    if (
      options !== undefined &&
      options !== null &&
      (typeof options !== 'object' || Array.isArray(options))
    ) {
      throw new TypeError('argument options must be a object') // express-session's message
    }
    super(EXPRESS_SESSION_COOKIE)
    // As express-session: each option in order through its setter, so of maxAge and expires the
    // later wins.
    const target = this as unknown as Record<string, unknown>
    for (const key of Object.keys(options ?? {})) {
      if (key !== 'data') target[key] = options![key]
    }
  }

  /**
   * A Set-Cookie value for `name=value` with this cookie's attributes (express-session's
   * `serialize`).
   */
  serialize(name: string, value: string): string {
    const { expires, domain, path, httpOnly, sameSite, partitioned, priority } = this
    return serialize(name, value, {
      path,
      httpOnly,
      secure: this.secure === true,
      ...(expires ? { expires } : {}),
      ...(domain ? { domain } : {}),
      ...(sameSite ? { sameSite } : {}),
      ...(partitioned ? { partitioned } : {}),
      ...(priority ? { priority } : {}),
    })
  }

  /**
   * A session's cookie, made by the core, counts as one: `req.session.cookie instanceof Cookie`.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return value instanceof CoreCookie
  }
}

/**
 * Gives a core cookie (`req.session.cookie`) this module's methods. Its state stays where the
 * core keeps it; only the prototype changes.
 */
export function adoptCookie(cookie: CoreCookie): CoreCookie {
  if (Object.getPrototypeOf(cookie) !== Cookie.prototype)
    Object.setPrototypeOf(cookie, Cookie.prototype)
  return cookie
}
