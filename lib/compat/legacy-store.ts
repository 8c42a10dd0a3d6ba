/**
 * What an express-session store is to concord: its callback interface, how to recognize one,
 * and the options and shape of the concord Store that adaptLegacyStore (adapted-store.ts) makes
 * of it.
 */
import type { CookieAttributes } from '../cookie.js'
import type { StoresRawIds } from '../at-rest-options.js'
import type { Closable, Store } from '../store.js'
import type { NodeCallback as Callback } from './callback.js'

/**
 * express-session's store interface, as third-party stores implement it
 * (https://github.com/expressjs/session#session-store-implementation).
 */
export interface LegacyStore {
  get(sid: string, callback: Callback): unknown
  set(sid: string, session: any, callback?: Callback): unknown
  destroy(sid: string, callback?: Callback): unknown
  touch?(sid: string, session: any, callback?: Callback): unknown
  /**
   * Every session: an object keyed by id (express-session, memorystore) or an array of sessions
   * with `id` (connect-redis).
   */
  all?(callback: Callback): unknown
  length?(callback: Callback): unknown
  clear?(callback?: Callback): unknown
  on?(event: string, listener: (...args: any[]) => void): unknown
  off?(event: string, listener: (...args: any[]) => void): unknown
  removeListener?(event: string, listener: (...args: any[]) => void): unknown
}

export interface AdaptLegacyStoreOptions {
  /**
   * Longest wait in ms for the store to call back. Past it the call fails with a StoreError
   * (503) instead of hanging the request. Default 5000.
   */
  timeout?: number
  /**
   * The cookie options you give `session()`, so the blob's `cookie` is exactly what
   * express-session would store. Needed only while processes on express-session share the
   * store. Without it, a session whose cookie has no maxAge records its idle period instead.
   * The express-session drop-in passes it for you.
   */
  cookie?: CookieAttributes
  /**
   * Before writing a new session, `get()` its id to make sure no session holds it. Default
   * true. The drop-in passes false: express-session writes a new session with `set()` alone,
   * and some stores' `get()` throws or never calls back for an unknown id.
   */
  checkNewIds?: boolean
  /**
   * Session ids whose last written expiry this process remembers (least recently used forgotten
   * first), so `touchAfter` throttles stores whose `touch()` moves only their TTL. Default
   * 10 000 (about 180 bytes each); 0 turns it off. See written-expiries.ts.
   */
  rememberExpiries?: number
}

/**
 * A concord Store over an express-session store; see {@link adaptLegacyStore}. It has the
 * per-user index, `count` and `clear` when the wrapped store can back them: ask with
 * `isUserIndex`, `isCountable` and `isClearable`.
 */
export interface LegacyStoreAdapter extends Store, Closable, StoresRawIds {
  /** The express-session store this adapter wraps. */
  readonly legacy: LegacyStore
}

/**
 * Whether `value` has express-session's callback store interface (and is not a concord Store,
 * whose `save` it would lack).
 *
 * @example
 * ```ts
 * isLegacyStore(new RedisStore({ client })) // true
 * isLegacyStore(new MemoryStore())          // false: concord's own MemoryStore
 * ```
 */
export function isLegacyStore(value: unknown): value is LegacyStore {
  const store = value as Record<string, unknown> | null
  return (
    typeof store === 'object' &&
    store !== null &&
    typeof store.get === 'function' &&
    typeof store.set === 'function' &&
    typeof store.destroy === 'function' &&
    typeof store.save !== 'function'
  )
}
