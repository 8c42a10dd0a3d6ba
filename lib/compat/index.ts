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
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createSessionMiddleware, type SessionMiddleware } from '../middleware.js'
import { isStore, type Defaults } from '../options.js'
import { Cookie, Session } from '../session.js'
import type { Store as ConcordStore } from '../store.js'
import { adaptLegacyStore, isLegacyStore } from './legacy-store.js'
import { MemoryStore } from './memory-store.js'
import { EXPRESS_SESSION_COOKIE, translateOptions, type ExpressSessionOptions } from './options.js'
import { adaptRequestSession } from './session-methods.js'
import { Store } from './store-base.js'

/**
 * express-session 1.19's defaults, for `createSessionMiddleware`: what makes this entry a
 * drop-in rather than a special case in the core.
 *
 * @example
 * ```ts
 * createSessionMiddleware({ ...EXPRESS_SESSION_DEFAULTS, store: () => store }, { secret, store })
 * ```
 */
export const EXPRESS_SESSION_DEFAULTS: Omit<Defaults, 'store'> = Object.freeze({
  cookie: EXPRESS_SESSION_COOKIE,
  resave: true,
  saveUninitialized: true,
  rejectUnknownOptions: false,
})

interface CompatRequest extends IncomingMessage {
  session?: Session | null
  sessionStore?: unknown
}

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
  const { options: translated, staticCookie } = translateOptions(options)
  const given = options?.store
  let store: ConcordStore
  let exposed: unknown // what req.sessionStore shows: the store the app passed
  if (given === undefined || given === null) {
    const memory = new MemoryStore()
    store = adaptLegacyStore(memory, { cookie: staticCookie })
    exposed = memory
  } else if (isLegacyStore(given)) {
    store = adaptLegacyStore(given, { cookie: staticCookie })
    exposed = given
  } else if (isStore(given)) {
    store = given
    exposed = given
  } else {
    throw new TypeError(
      'session({ store }): store must be an express-session store (get/set/destroy with callbacks) ' +
        'or a concord-session Store (load/save/touch/destroy)',
    )
  }
  const middleware = createSessionMiddleware({ ...EXPRESS_SESSION_DEFAULTS, store: () => store }, { ...translated, store })

  return function session(req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void {
    middleware(req, res, (err?: unknown) => {
      const request = req as CompatRequest
      // Only a session this middleware made (not an outer one it stepped aside for).
      if (request.sessionStore === store) {
        request.sessionStore = exposed
        adaptRequestSession(request)
      }
      next(err)
    })
  }
}

session.Store = Store
session.Cookie = Cookie
session.Session = Session
session.MemoryStore = MemoryStore
session.adaptLegacyStore = adaptLegacyStore

export default session
export { session, Store, Cookie, Session, MemoryStore, adaptLegacyStore, isLegacyStore }
export type { LoadedSession, StoreConstructor } from './store-base.js'
export type { MemoryStoreOptions } from './memory-store.js'
export type { LegacyStore, LegacyStoreAdapter, AdaptLegacyStoreOptions } from './legacy-store.js'
export type { ExpressSessionOptions, ExpressSessionCookieOptions } from './options.js'
export type { SessionData, Callback } from '../session.js'
export type { SessionMiddleware } from '../middleware.js'
export { StoreError } from '../store.js'
