/**
 * The Set-Cookie writer: the header values that set and clear the session cookie.
 */
import type { ResolvedCookie } from './cookie.js'

/**
 * A Set-Cookie value. Expires and Max-Age are both sent: Max-Age wins where supported
 * (RFC 6265 §5.3 step 3), Expires covers older agents.
 *
 * @example
 * ```ts
 * const attributes = { expires: null, path: '/', httpOnly: true, secure: true, sameSite: 'lax' }
 * serializeCookie('sid', 's:abc.mac', attributes)
 * // 'sid=s%3Aabc.mac; Path=/; HttpOnly; Secure; SameSite=Lax'
 * ```
 */
export function serializeCookie(
  name: string,
  value: string,
  cookie: ResolvedCookie,
  now = Date.now(),
): string {
  // Written out here rather than through the cookie package: its serializer copies the options
  // into a new object on every call, which took a slow path. Same attribute order and checks.
  // The name is checked at setup; a per-session domain or path is checked here, so a value set
  // on req.session.cookie can never inject another attribute.
  let str = name + '=' + (value ? encodeURIComponent(value) : '')
  const expires = cookie.expires
  // Rounded: the few ms between setting the expiry and writing the header must not cost a second.
  if (expires) str += '; Max-Age=' + Math.max(0, Math.round((expires.getTime() - now) / 1000))
  if (cookie.domain) {
    if (!DOMAIN.test(cookie.domain))
      throw new TypeError(`option domain is invalid: ${cookie.domain}`)
    str += '; Domain=' + cookie.domain
  }
  if (cookie.path) {
    if (cookie.path !== '/' && !PATH.test(cookie.path))
      throw new TypeError(`option path is invalid: ${cookie.path}`)
    str += '; Path=' + cookie.path
  }
  if (expires) {
    if (!Number.isFinite(expires.getTime()))
      throw new TypeError(`option expires is invalid: ${String(expires)}`)
    str += '; Expires=' + expires.toUTCString()
  }
  if (cookie.httpOnly) str += '; HttpOnly'
  if (cookie.secure) str += '; Secure'
  if (cookie.partitioned) str += '; Partitioned'
  if (cookie.priority) {
    const priority = String(cookie.priority).toLowerCase()
    str +=
      priority === 'low'
        ? '; Priority=Low'
        : priority === 'medium'
          ? '; Priority=Medium'
          : priority === 'high'
            ? '; Priority=High'
            : invalid('priority', cookie.priority)
  }
  if (cookie.sameSite) {
    const sameSite =
      typeof cookie.sameSite === 'string' ? cookie.sameSite.toLowerCase() : cookie.sameSite
    str +=
      sameSite === true || sameSite === 'strict'
        ? '; SameSite=Strict'
        : sameSite === 'lax'
          ? '; SameSite=Lax'
          : sameSite === 'none'
            ? '; SameSite=None'
            : invalid('sameSite', cookie.sameSite)
  }
  return str
}

// The cookie package's checks: https://github.com/jshttp/cookie
const DOMAIN = /^([.]?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)([.][a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i
const PATH = /^[\u0020-\u003A\u003D-\u007E]*$/

function invalid(option: string, value: unknown): never {
  throw new TypeError(`option ${option} is invalid: ${String(value)}`)
}

/**
 * A Set-Cookie value that makes the browser drop the cookie now.
 *
 * @example
 * ```ts
 * clearCookie('sid', { path: '/', httpOnly: true, secure: false })
 * // 'sid=; Path=/; Expires=Thu, 01 Jan 1970 ...'
 * ```
 */
export function clearCookie(name: string, cookie: Omit<ResolvedCookie, 'expires'>): string {
  return serializeCookie(name, '', { ...cookie, expires: new Date(0) }, 0)
}
