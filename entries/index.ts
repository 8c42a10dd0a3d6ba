/**
 * concord-session: session middleware for Express and Connect.
 *
 * @example
 * ```ts
 * import express from 'express'
 * import session, { MemoryStore } from 'concord-session'
 *
 * const app = express()
 * app.use(session(new MemoryStore(), { secret: process.env.SESSION_SECRET!, cookie: { maxAge: 3_600_000 } }))
 * app.get('/', (req, res) => {
 *   req.session.visits = (req.session.visits ?? 0) + 1
 *   res.send(`visit ${req.session.visits}`)
 * })
 * ```
 */
import { createSessionMiddleware, type SessionMiddleware } from '../lib/middleware.js'
import { SAFE_DEFAULTS, type SessionOptions } from '../lib/options.js'
import type { Store } from '../lib/store.js'
import { MemoryStore } from '../stores/memory/store.js'

/**
 * Creates the session middleware: `session(store, options)` or express-session's
 * `session(options)` (with `options.store`, or a MemoryStore by default).
 *
 * @example
 * ```ts
 * app.use(session(new RedisStore({ client: new Redis() }), { secret: process.env.SESSION_SECRET! }))
 * app.use(session({ secret, store, cookie: { maxAge: 3_600_000 }, rolling: true }))
 * ```
 */
export function session(store: Store, options?: SessionOptions): SessionMiddleware
export function session(options?: SessionOptions): SessionMiddleware
export function session(
  storeOrOptions?: Store | SessionOptions,
  options?: SessionOptions,
): SessionMiddleware {
  return createSessionMiddleware(
    { ...SAFE_DEFAULTS, store: () => new MemoryStore() },
    storeOrOptions,
    options,
  )
}

export default session

export { MemoryStore, type MemoryStoreOptions } from '../stores/memory/store.js'
export {
  Session,
  Cookie,
  sessionInfo,
  type SessionData,
  type SessionInfo,
  type Callback,
} from '../lib/session.js'
export { SessionDataError } from '../lib/changes.js'
export { keyTtl, type KeyTtl, type Duration } from '../lib/key-ttl.js'
export {
  StoreError,
  isValidSessionId,
  touchedExpiry,
  withoutExpiredKeys,
  expiredKeys,
  isUserIndex,
  isCountable,
  isClearable,
  isClosable,
  touchIsDue,
  enforcesUserLimit,
  isRenewable,
  loadsNow,
  type LoadsNow,
  savesNow,
  type SavesNow,
  type Renewable,
  type UserLimitStore,
  type Store,
  type UserIndex,
  type Countable,
  type Clearable,
  type Closable,
  type SessionRecord,
  type SessionChange,
  type SaveResult,
  type LoadOptions,
  type CookieOverrides,
} from '../lib/store.js'
export {
  SessionLimitError,
  planUserLimit,
  type UserLimit,
  type MaxSessionsPerUser,
  type UserSession,
} from '../lib/user-limit.js'
export type { SessionOptions } from '../lib/options.js'
export { hashSessionId } from '../lib/id-hash.js'
export { deriveIdHashKey, type StoresRawIds } from '../lib/at-rest-options.js'
export type { EncryptOptions } from '../lib/at-rest-cipher.js'
export type { SessionEvent, SessionEventListener } from '../lib/events.js'
export {
  channels,
  type TracedContext,
  type LoadContext,
  type SaveContext,
  type DestroyContext,
  type TouchContext,
} from '../lib/diagnostics.js'
export {
  reportsLifecycle,
  LifecycleListeners,
  type ReportsLifecycle,
  type StoreNotice,
  type StoreNoticeListener,
} from '../lib/store-notices.js'
export type { SessionMiddleware } from '../lib/middleware.js'
export type { CookieAttributes } from '../lib/cookie.js'
