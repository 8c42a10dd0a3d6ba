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
import type { SessionMiddleware as CoreSessionMiddleware } from '../lib/middleware.js'
import { Session as CoreSession, type Callback as CoreCallback } from '../lib/session.js'
import { StoreError as CoreStoreError } from '../lib/store.js'
import { Cookie as CompatCookie } from '../lib/compat/cookie.js'
import {
  adaptLegacyStore as adaptLegacy,
  isLegacyStore as isLegacy,
  storeOwnError as ownError,
  type AdaptLegacyStoreOptions as AdaptOptions,
  type LegacyStore as Legacy,
  type LegacyStoreAdapter as Adapter,
} from '../lib/compat/adapted-store.js'
import {
  ExpressSessionMemoryStore as CompatMemoryStore,
  type ExpressSessionMemoryStoreOptions as MemoryOptions,
} from '../lib/compat/memory-store.js'
import { createDropIn, EXPRESS_SESSION_DEFAULTS as DEFAULTS } from '../lib/compat/middleware.js'
import type { ExpressSessionCookieOptions, ExpressSessionOptions } from '../lib/compat/options.js'
import type {
  SessionCookieData as StoredCookie,
  SessionStore as RequestStore,
} from '../lib/compat/request-store.js'
import {
  Store as StoreBase,
  type LoadedSession as Loaded,
  type StoreConstructor as StoreCtor,
} from '../lib/compat/store-base.js'

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
function session(options?: session.SessionOptions): session.SessionMiddleware {
  return createDropIn(options)
}

/**
 * Everything this module exports is also on `session`, for values and types alike, as
 * @types/express-session declares it: `session.Store` (a class to extend, and a type),
 * `session.SessionOptions`, `session.SessionData`, `session.Cookie`, `session.MemoryStore`...
 * CommonJS callers get `session` itself (`import session = require(...)`), so it must hold all.
 */
declare namespace session {
  export const Store: typeof StoreBase
  export type Store = StoreBase
  export const Cookie: typeof CompatCookie
  export type Cookie = CompatCookie
  export const Session: typeof CoreSession
  export type Session = CoreSession
  export const MemoryStore: typeof CompatMemoryStore
  export type MemoryStore = CompatMemoryStore
  export const StoreError: typeof CoreStoreError
  export type StoreError = CoreStoreError
  export const adaptLegacyStore: typeof adaptLegacy
  export const isLegacyStore: typeof isLegacy
  export const storeOwnError: typeof ownError
  export const EXPRESS_SESSION_DEFAULTS: typeof DEFAULTS
  /** express-session's name for the options, as @types/express-session spells it. */
  export type SessionOptions = ExpressSessionOptions
  export type CookieOptions = ExpressSessionCookieOptions
  /**
   * Your session's data: with CommonJS types (`import session = require(...)`), augment it as
   * with @types/express-session: `declare module 'concord-session/express-session' { interface SessionData { views: number } }`.
   */
  export interface SessionData extends DropInSessionData {}
  export type SessionMiddleware = CoreSessionMiddleware
  export type Callback = CoreCallback
  export type LoadedSession = Loaded
  export type StoreConstructor = StoreCtor
  export type MemoryStoreOptions = MemoryOptions
  export type LegacyStore = Legacy
  export type LegacyStoreAdapter = Adapter
  export type AdaptLegacyStoreOptions = AdaptOptions
  /** `req.sessionStore`'s type: the store you passed, with express-session's callback API. */
  export type SessionStore = RequestStore<session.SessionData>
  /** `SessionData['cookie']`: the cookie as stores see it. */
  export type SessionCookieData = StoredCookie
  export type { ExpressSessionOptions, ExpressSessionCookieOptions }
}
/**
 * Your session's data, as with @types/express-session: augment it where you imported the
 * drop-in, and `req.session` is typed with it. `cookie` is the cookie as a store sees it in
 * the stored session.
 *
 * @example
 * ```ts
 * declare module 'concord-session/express-session' {
 *   interface SessionData { views: number }
 * }
 * ```
 */
export interface SessionData {
  cookie: StoredCookie
}
type DropInSessionData = SessionData
type DropInCommonJsSessionData = session.SessionData

// What the drop-in's types add to the core's, whenever a program imports the drop-in.
declare module '../lib/session.js' {
  // The core's SessionData (what req.session is typed with) takes in what apps declare here;
  // req.session.cookie is the Session's own.
  interface SessionData
    extends Omit<DropInSessionData, 'cookie'>, Omit<DropInCommonJsSessionData, 'cookie'> {}
}
// As express-session: the id, and the store the app passed, on the request too.
declare global {
  namespace Express {
    interface Request {
      sessionID: string
      sessionStore: RequestStore<DropInCommonJsSessionData>
    }
  }
}
// express-session's Cookie has `signed` (set from options, never read), so the drop-in's has.
declare module '../lib/session-cookie.js' {
  interface Cookie {
    signed?: boolean
  }
}

Object.assign(session, {
  Store: StoreBase,
  Cookie: CompatCookie,
  Session: CoreSession,
  MemoryStore: CompatMemoryStore,
  StoreError: CoreStoreError,
  adaptLegacyStore: adaptLegacy,
  isLegacyStore: isLegacy,
  storeOwnError: ownError,
  EXPRESS_SESSION_DEFAULTS: DEFAULTS,
})

export default session
export {
  session,
  StoreBase as Store,
  CompatCookie as Cookie,
  CoreSession as Session,
  CompatMemoryStore as MemoryStore,
  CoreStoreError as StoreError,
  adaptLegacy as adaptLegacyStore,
  isLegacy as isLegacyStore,
  ownError as storeOwnError,
  DEFAULTS as EXPRESS_SESSION_DEFAULTS,
}
export type {
  ExpressSessionOptions as SessionOptions,
  ExpressSessionCookieOptions as CookieOptions,
  ExpressSessionOptions,
  ExpressSessionCookieOptions,
  CoreCallback as Callback,
  CoreSessionMiddleware as SessionMiddleware,
  Loaded as LoadedSession,
  StoreCtor as StoreConstructor,
  MemoryOptions as MemoryStoreOptions,
  Legacy as LegacyStore,
  Adapter as LegacyStoreAdapter,
  AdaptOptions as AdaptLegacyStoreOptions,
  RequestStore as SessionStore,
  StoredCookie as SessionCookieData,
}
