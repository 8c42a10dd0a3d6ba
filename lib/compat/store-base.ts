/**
 * express-session's `Store` base class, which third-party stores extend: an EventEmitter with
 * `regenerate`, `load` and `createSession`. It is a function constructor, not a class, because
 * older stores call it as `Store.call(this, options)` (session-file-store does), which a
 * class constructor forbids.
 */
import { EventEmitter } from 'node:events'
import { inherits } from 'node:util'
import { Session as CoreSession } from '../session.js'
import { META_KEY } from '../formats/express-session.js'
import { callLegacy } from './callback.js'
import type { LegacyStore } from './adapted-store.js'
import type { NodeCallback as Callback } from './callback.js'
import { replaceSessionData } from './replace-session.js'

/** How long `load` waits for the subclass's `get` to call back. */
const LOAD_TIMEOUT = 5_000

/**
 * A session as `Store#load` and `Store#createSession` hand it out: the stored data, with
 * `cookie.expires` as a Date.
 */
export type LoadedSession = Record<string, unknown> & {
  readonly id: string
  cookie: Record<string, unknown>
}

/** What a Store instance has, besides the get/set/destroy its subclass defines. */
export interface Store extends EventEmitter {
  /** Destroys `req.sessionID` and gives the request a new session (express-session's semantics). */
  regenerate(
    req: { sessionID?: string; session?: { regenerate?: (cb: Callback) => unknown } },
    callback: Callback,
  ): void
  /**
   * Gets a session by id and passes it to `callback(err, session)`; `session` is undefined when
   * unknown.
   */
  load(sid: string, callback: Callback): void
  /**
   * As express-session: makes `sess` (stored data, with its `cookie`) the request's session,
   * under the request's id, and returns `req.session`. Its data is replaced; it is saved at
   * the end of the request as any change is.
   */
  createSession<R extends { session: CoreSession; sessionID: string }>(
    req: R,
    sess: object,
  ): R['session']
  /**
   * Turns a stored session into a {@link LoadedSession} (`cookie.expires` becomes a Date),
   * for an object that is not a request, as `load` does.
   */
  createSession(req: { sessionID: string }, sess: Record<string, unknown>): LoadedSession
}

export interface StoreConstructor {
  new (options?: unknown): Store
  (this: Store, options?: unknown): void
  prototype: Store
}

/**
 * The base class express-session stores extend. Pass an instance of a subclass to the
 * drop-in `session({ store })`, or wrap it with `adaptLegacyStore` for the main `session()`.
 *
 * @example
 * ```ts
 * import session from 'concord-session/express-session'
 * import createMemoryStore from 'memorystore'
 *
 * const MemoryStore = createMemoryStore(session) // class MemoryStore extends session.Store
 * app.use(session({ secret, store: new MemoryStore({ checkPeriod: 86_400_000 }) }))
 * ```
 */
export const Store = function Store(this: Store) {
  EventEmitter.call(this)
} as unknown as StoreConstructor

inherits(Store, EventEmitter)

Store.prototype.regenerate = function regenerate(this: Store & LegacyStore, req, callback) {
  // Under concord the request's session regenerates itself (new id, old one destroyed).
  if (typeof req.session?.regenerate === 'function') {
    req.session.regenerate(callback)
    return
  }
  this.destroy(req.sessionID ?? '', (err?: unknown) => callback(err))
}

Store.prototype.load = function load(this: Store & LegacyStore, sid, callback) {
  callLegacy<Record<string, unknown> | null | undefined>(this, 'get', [sid], LOAD_TIMEOUT).then(
    (sess) => (sess ? callback(null, this.createSession({ sessionID: sid }, sess)) : callback()),
    (err: unknown) => callback(err),
  )
}

Store.prototype.createSession = function createSession(
  req: { sessionID: string; session?: unknown; headers?: unknown },
  sess: Record<string, unknown>,
): any {
  if (req.session instanceof CoreSession) return replaceSessionData(req.session, sess)
  if ('session' in req || 'headers' in req) {
    throw new TypeError(
      'Store#createSession(req, sess): req has no session from concord-session/express-session ' +
        '(call it while the drop-in handles the request, after session() ran)',
    )
  }
  const cookie: Record<string, unknown> = {
    ...(sess.cookie as Record<string, unknown> | undefined),
  }
  if (typeof cookie.expires === 'string') cookie.expires = new Date(cookie.expires)
  const session = { ...sess, cookie } as LoadedSession
  delete session[META_KEY] // concord's bookkeeping, not the app's data
  Object.defineProperty(session, 'id', { value: req.sessionID, enumerable: false })
  return session
}
