/**
 * The drop-in's `session(options)`: the core's middleware with express-session's defaults,
 * options and stores, and what express-session does around it (a disconnected store, the
 * store's own errors, the response after a failed save).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createSessionMiddleware, type SessionMiddleware } from '../middleware.js'
import { isStore, type Defaults } from '../options.js'
import type { Session } from '../session.js'
import type { Store as ConcordStore } from '../store.js'
import { adaptLegacyStore, isLegacyStore, type LegacyStore } from './adapted-store.js'
import { ExpressSessionMemoryStore } from './memory-store.js'
import { EXPRESS_SESSION_COOKIE, translateOptions, type ExpressSessionOptions } from './options.js'
import { exposeStore } from './request-store.js'
import { hookDropInResponse } from './response.js'
import { adaptRequestSession, expressSessionError } from './session-methods.js'

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
  browserCookieRules: false,
  requestFields: true,
})

/**
 * express-session takes any string as an id, from genid or a signed cookie; its cookie is
 * URL-encoded.
 */
function anyStringId(id: unknown): id is string {
  return typeof id === 'string' && id.length > 0 && id.length <= 4096
}

/**
 * The drop-in's `rememberExpiries`, checked here so the error names `session()`, which the app
 * called, and not the adapter it makes.
 */
function dropInRememberExpiries(value: unknown, legacy: boolean): number | undefined {
  if (value === undefined) return undefined
  if (!legacy) {
    throw new TypeError(
      'session({ rememberExpiries }): rememberExpiries applies to an express-session store ' +
        'only; a concord Store (or an adaptLegacyStore adapter, which takes it itself) keeps ' +
        'its own expiries',
    )
  }
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(
      'session({ rememberExpiries }): rememberExpiries must be a whole number of session ids, ' +
        `0 or more (got ${typeof value === 'string' ? JSON.stringify(value) : String(value)})`,
    )
  }
  return value
}

interface CompatRequest extends IncomingMessage {
  session?: Session | null
  sessionStore?: unknown
}

type Next = (err?: unknown) => void

/**
 * Creates the middleware as express-session's `session(options)` does; see the entry point.
 *
 * @example
 * ```ts
 * app.use(createDropIn({ secret: 'keyboard cat', store: new RedisStore({ client }) }))
 * ```
 */
export function createDropIn(options?: ExpressSessionOptions): SessionMiddleware {
  const { options: translated, staticCookie } = translateOptions(options)
  const given = options?.store
  let store: ConcordStore
  let exposed: unknown // what req.sessionStore shows: the store the app passed
  let legacy: LegacyStore | undefined
  if (given === undefined || given === null) {
    legacy = new ExpressSessionMemoryStore()
  } else if (isLegacyStore(given)) {
    legacy = given
  } else if (!isStore(given)) {
    throw new TypeError(
      'session({ store }): store must be an express-session store (get/set/destroy with ' +
        'callbacks) ' +
        'or a concord-session Store (load/save/touch/destroy)',
    )
  }
  const rememberExpiries = dropInRememberExpiries(options?.rememberExpiries, legacy !== undefined)
  if (legacy) {
    store = adaptLegacyStore(legacy, { cookie: staticCookie, checkNewIds: false, rememberExpiries })
    exposed = legacy
  } else {
    store = given as ConcordStore
    exposed = given
  }
  exposeStore(exposed)
  const middleware = createSessionMiddleware(
    // A concord store keeps the strict id alphabet; an express-session store takes any id, as
    // before.
    {
      ...EXPRESS_SESSION_DEFAULTS,
      ...(legacy ? { isValidId: anyStringId } : {}),
      store: () => store,
    },
    { ...translated, store },
  )

  // As express-session: while the store says it is disconnected, requests go on without a session.
  let connected = true
  if (legacy && typeof legacy.on === 'function') {
    legacy.on('disconnect', () => (connected = false))
    legacy.on('connect', () => (connected = true))
  }

  return function session(req: IncomingMessage, res: ServerResponse, next: Next): void {
    const request = req as CompatRequest
    if (request.session || !connected) return next()
    let response: ReturnType<typeof hookDropInResponse> | undefined
    let called = false
    const plain = { end: res.end, writeHead: res.writeHead } // before the core hooks them
    middleware(req, res, (err?: unknown) => {
      if (called) {
        // After next(): the save or destroy at the end of the request failed.
        const error = expressSessionError(err)
        if (!response?.lateError(error)) setImmediate(next, error)
        return
      }
      called = true
      // Only a session this middleware made (not an outer one it stepped aside for).
      if (!err && request.sessionStore === store) {
        request.sessionStore = exposed
        adaptRequestSession(request)
        response = hookDropInResponse(req, res, next, plain)
      }
      next(err === undefined ? undefined : expressSessionError(err))
    })
  }
}
