/**
 * express-session's `store.createSession(req, sess)` on a concord session: the request keeps
 * its Session (its id, its save at the end of the request), and takes `sess` as its data and
 * cookie, as express-session's new Session would hold them.
 */
import { Cookie as CoreCookie, type Session } from '../session.js'
import { META_KEY } from '../formats/express-session.js'

/** Cookie attributes copied as they are; `expires` (and with it maxAge) is handled apart. */
const ATTRIBUTES = ['path', 'domain', 'httpOnly', 'secure', 'sameSite', 'partitioned', 'priority']

/**
 * Replaces `session`'s data with `sess`'s (every key but `cookie`, concord's own, and the
 * session's own members such as `id` and `save`), applies
 * `sess.cookie`'s attributes to the session's cookie, and returns `session`. Only what differs
 * is set, so data equal to what is there is no change to save.
 *
 * @example
 * ```ts
 * replaceSessionData(req.session, { views: 0, cookie: req.session.cookie }) // === req.session
 * ```
 */
export function replaceSessionData<S extends Session>(session: S, sess: object): S {
  if (typeof sess !== 'object' || sess === null) {
    throw new TypeError('Store#createSession(req, sess): sess must be a session object')
  }
  const target = session as unknown as Record<string, unknown>
  const source = sess as Record<string, unknown>
  const expires = expiresOf(source.cookie) // checked first: a bad date changes nothing
  for (const key of Object.keys(target)) {
    if (key !== 'cookie' && !Object.hasOwn(source, key)) delete target[key]
  }
  for (const key of Object.keys(source)) {
    if (key === 'cookie' || key === META_KEY) continue
    // As express-session's Session: a key the session has itself (id, save...) is not data.
    if (key in target && !Object.prototype.propertyIsEnumerable.call(target, key)) continue
    if (target[key] !== source[key]) target[key] = source[key]
  }
  applyCookie(session.cookie, source.cookie, expires)
  return session
}

/** The cookie's expiry: a Date, null for none, or undefined to leave it as it is. */
function expiresOf(given: unknown): Date | null | undefined {
  if (typeof given !== 'object' || given === null) return undefined
  const expires = (given instanceof CoreCookie ? given.data : (given as Record<string, unknown>))
    .expires
  if (expires === null || expires === false) return null
  if (!(expires instanceof Date || typeof expires === 'string')) return undefined
  const date = new Date(expires) // a string once the session has been through JSON
  if (Number.isNaN(date.getTime())) {
    throw new TypeError('Store#createSession(req, sess): sess.cookie.expires is not a date')
  }
  return date
}

function applyCookie(cookie: CoreCookie, given: unknown, expires: Date | null | undefined): void {
  if (given === cookie || typeof given !== 'object' || given === null) return
  const from = given instanceof CoreCookie ? given.data : (given as Record<string, unknown>)
  const to = cookie as unknown as Record<string, unknown>
  for (const key of ATTRIBUTES) {
    if (key in from && from[key] !== to[key]) to[key] = from[key]
  }
  if (expires === null) {
    if (cookie.expires !== null) cookie.expires = null
  } else if (expires && expires.getTime() !== cookie.expires?.getTime()) {
    cookie.expires = expires
  }
}
