/**
 * concord-session/express-session: a drop-in for express-session 1.19. Change the import,
 * keep the options and the store:
 *
 * ```ts
 * import session from 'concord-session/express-session'   // was: from 'express-session'
 * ```
 *
 * It is the core's `createSessionMiddleware` with express-session's defaults (resave and
 * saveUninitialized true, no SameSite, `secure: false`, unknown options ignored), its options
 * translated, and any express-session store adapted. No compat special case lives in the core.
 */
import type { SessionMiddleware } from '../middleware.js'
import { Session } from '../session.js'
import { Cookie } from './cookie.js'
import { adaptLegacyStore, isLegacyStore, storeOwnError } from './legacy-store.js'
import { MemoryStore } from './memory-store.js'
import { createDropIn, EXPRESS_SESSION_DEFAULTS } from './middleware.js'
import type { ExpressSessionOptions } from './options.js'
import { Store } from './store-base.js'

/**
 * Creates the session middleware exactly as express-session's `session(options)` does,
 * with express-session's defaults. `options.store` may be any express-session store
 * (connect-redis, memorystore, session-file-store, ...) or a concord Store.
 * `req.sessionStore` is the store you passed; `req.session`'s methods take callbacks and
 * also return promises.
 *
 * @example
 * ```ts
 * import session from 'concord-session/express-session'
 * import { RedisStore } from 'connect-redis'
 *
 * app.use(session({
 *   store: new RedisStore({ client: redisClient }),
 *   secret: 'keyboard cat',
 *   resave: false,
 *   saveUninitialized: false,
 * }))
 * app.get('/', (req, res) => {
 *   req.session.views = (req.session.views ?? 0) + 1
 *   res.send(`views: ${req.session.views}`)
 * })
 * ```
 */
function session(options?: ExpressSessionOptions): SessionMiddleware {
  return createDropIn(options)
}

session.Store = Store
session.Cookie = Cookie
session.Session = Session
session.MemoryStore = MemoryStore
session.adaptLegacyStore = adaptLegacyStore

export default session
export { session, Store, Cookie, Session, MemoryStore, adaptLegacyStore, isLegacyStore, storeOwnError, EXPRESS_SESSION_DEFAULTS }
export type { LoadedSession, StoreConstructor } from './store-base.js'
export type { MemoryStoreOptions } from './memory-store.js'
export type { LegacyStore, LegacyStoreAdapter, AdaptLegacyStoreOptions } from './legacy-store.js'
export type { ExpressSessionOptions, ExpressSessionCookieOptions } from './options.js'
export type { SessionData, Callback } from '../session.js'
export type { SessionMiddleware } from '../middleware.js'
export { StoreError } from '../store.js'
