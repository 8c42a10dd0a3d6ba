/**
 * Option defaults and validation. Everything here runs once, at `session()` time, and throws
 * a TypeError that says what to change; nothing is re-checked per request.
 */
import type { IncomingMessage } from 'node:http'
import { randomUUID } from 'node:crypto'
import { rejectUnknownKeys, requirePositive } from './check-options.js'
import { ONE_DAY_MS } from './time.js'
import { validateCookieAttributes, type CookieAttributes, type Secret } from './cookie.js'
import { enforcesUserLimit, isValidSessionId, type Store } from './store.js'
import { resolveUserLimit, type MaxSessionsPerUser, type UserLimit } from './user-limit.js'
import { resolveRenew, type RenewOptions, type ResolvedRenew } from './renew.js'
import type { SessionEventListener } from './events.js'
import { resolveAtRest, type AtRestConfig } from './at-rest-options.js'
import type { EncryptOptions } from './at-rest-cipher.js'
import { checkFirstArgument, isStore } from './store-checks.js'

export { isStore } from './store-checks.js'

/** Options of `session()`. The names and meanings are express-session's, plus a few more. */
export interface SessionOptions {
  /** Where sessions live. Default: a new MemoryStore (one process only). */
  store?: Store
  /**
   * Signs the cookie. An array rotates secrets: the first signs, all verify, and a cookie
   * verified by an older one is re-issued under the first. Falls back to `req.secret` from
   * cookie-parser when unset. A secret may be a string or bytes (a Buffer).
   */
  secret?: Secret | readonly Secret[]
  /** Cookie name. Default `'connect.sid'`, express-session's: switching keeps users signed in. */
  name?: string
  /** Cookie attributes, or a function of the request that returns them. */
  cookie?: CookieAttributes | ((req: IncomingMessage) => CookieAttributes)
  /** Makes a new session id; may be async. Default: `crypto.randomUUID()` (122 random bits). */
  genid?: (req: IncomingMessage) => string | Promise<string>
  /**
   * Trust X-Forwarded-Proto for `secure: 'auto'`. `true` trusts it, `false` ignores it, unset
   * follows Express's `trust proxy` through `req.secure`.
   */
  proxy?: boolean
  /** Save the session on every request even when nothing changed. Default false. */
  resave?: boolean
  /** Send the cookie on every response, restarting its maxAge. Default false. */
  rolling?: boolean
  /** Save a new session that holds nothing. Default false (no cookie until there is data). */
  saveUninitialized?: boolean
  /** What `req.session = null` or `delete req.session` does: 'keep' (default) or 'destroy'. */
  unset?: 'destroy' | 'keep'
  /** Hard limit in ms on a session's life from creation, however active it is. */
  absoluteTimeout?: number
  /** Server-side idle timeout in ms for sessions whose cookie has no maxAge. Default 24 h. */
  idleTimeout?: number
  /** Largest session, in characters of JSON, that will be saved. Default 1 MiB. */
  maxSize?: number
  /**
   * The longest, in ms, a save may take in the store. Each write carries a deadline this far
   * ahead; the store refuses it after that, so the request fails with a 503 StoreError (code
   * `'ETIMEDOUT'`) and the save never lands later. Once a call has failed that way (or the store
   * is unreachable), saves queued behind it fail at once instead of each waiting out its own
   * timeout, and one request at a time probes until the store answers again. So in an outage
   * every request is answered within about this bound. Default 2000.
   */
  saveTimeout?: number
  /**
   * At most this many live sessions per user (see `req.session.setUser`), enforced by the store
   * atomically when a session is linked to its user. A number evicts the user's oldest sessions;
   * `{ max, onLimit: 'refuse' }` makes the sign-in fail with a SessionLimitError instead. Needs
   * a store that enforces it (every concord store; not an adapted express-session store).
   * See docs/users.md.
   */
  maxSessionsPerUser?: MaxSessionsPerUser
  /**
   * Touch throttling, in ms: where a touch costs a write (file, PostgreSQL, an adapted
   * express-session store), a read writes the new idle expiry only once it would move it by
   * this much or more, so the stored expiry is at most this much earlier than without it.
   * Default: every read touches. See docs/users.md.
   */
  touchAfter?: number
  /**
   * Gives a session a new id every so often, keeping its data: `{ every: '15m' }`,
   * `{ afterRequests: 1000 }`, or both, with `grace` (default `'30s'`) for requests already
   * in flight with the old id. Needs a store that can renew. See docs/lifecycle.md.
   */
  renew?: RenewOptions
  /**
   * Called with each lifecycle event (created, regenerated, renewed, destroyed, expired,
   * signedOutEverywhere), for audit logs. Ids in events are keyed hashes. A listener that
   * throws or rejects never fails a request: the first failure is a process warning.
   */
  onEvent?: SessionEventListener
  /**
   * The key of the hash that stands for a session id in store keys, events and diagnostics
   * (see `hashSessionId`). A string or a non-empty Buffer. Default: derived from the first
   * secret (the others are looked under after a rotation), or `'concord-session'` without a
   * secret at setup. See docs/at-rest.md.
   */
  idHashKey?: string | Buffer
  /**
   * Key each session in the store by the keyed hash of its id, so a store dump cannot be
   * replayed as cookies. Default true, except for an adapted express-session store.
   * Sessions stored under their raw id move under the hash when first loaded.
   */
  hashIds?: boolean
  /**
   * Encrypt each stored value with AES-256-GCM: `{ keys: [newest, ...older] }`, 32-byte keys.
   * The newest encrypts, all decrypt. See docs/at-rest.md.
   */
  encrypt?: EncryptOptions
}

export interface ResolvedOptions {
  store: Store
  secrets: readonly Secret[] | null
  name: string
  cookie: (req: IncomingMessage) => CookieAttributes
  genid: (req: IncomingMessage) => string | Promise<string>
  proxy: boolean | undefined
  resave: boolean
  rolling: boolean
  saveUninitialized: boolean
  unset: 'destroy' | 'keep'
  absoluteTimeout: number | undefined
  idleTimeout: number
  maxSize: number
  /** Whether an id from `genid` or a cookie is one this middleware accepts. */
  isValidId: (id: unknown) => id is string
  saveTimeout: number
  maxSessionsPerUser: UserLimit | undefined
  touchAfter: number | undefined
  renew: ResolvedRenew | undefined
  onEvent: SessionEventListener | undefined
  idHashKey: string | Buffer
  /** Hashed ids and encryption at rest. */
  atRest: AtRestConfig
  /** Whether `req.sessionID` and `req.sessionStore` are set (the drop-in's defaults). */
  requestFields: boolean
}

/**
 * The defaults an entry point gives `session()`. The main entry passes {@link SAFE_DEFAULTS};
 * the express-session drop-in passes express-session's own, so neither is a special case here.
 */
export interface Defaults {
  store: () => Store
  cookie: Readonly<CookieAttributes>
  resave: boolean
  saveUninitialized: boolean
  /**
   * Throw on an option name `session()` does not know (a typo), or ignore it as express-session
   * does.
   */
  rejectUnknownOptions: boolean
  /** The session ids accepted from `genid` and from cookies. Default {@link isValidSessionId}. */
  isValidId?: (id: unknown) => id is string
  /**
   * Refuse cookie settings that browsers drop (SameSite=None or Partitioned without Secure).
   * Default true.
   */
  browserCookieRules?: boolean
  /**
   * Also put `req.sessionID` and `req.sessionStore` on the request, as express-session does.
   * Off in the main entry: Express gives each request a fresh prototype-swapped object, and
   * V8 keeps no hidden-class transitions for such objects, so every property a middleware adds
   * to `req` builds a new hidden class per request (about 1.3 KB and a runtime call).
   */
  requestFields?: boolean
}

/** Safe defaults, where express-session's are not: see the README's "What differs". */
export const SAFE_DEFAULTS: Omit<Defaults, 'store'> = Object.freeze({
  cookie: Object.freeze({
    path: '/',
    httpOnly: true,
    secure: 'auto',
    sameSite: 'lax',
    maxAge: null,
  } as const),
  resave: false,
  saveUninitialized: false,
  rejectUnknownOptions: true,
})

const KNOWN = [
  'store',
  'secret',
  'name',
  'cookie',
  'genid',
  'proxy',
  'resave',
  'rolling',
  'saveUninitialized',
  'unset',
  'absoluteTimeout',
  'idleTimeout',
  'maxSize',
  'saveTimeout',
  'maxSessionsPerUser',
  'touchAfter',
  'renew',
  'onEvent',
  'idHashKey',
  'hashIds',
  'encrypt',
] as const
// A cookie name is an RFC 7230 token: https://datatracker.ietf.org/doc/html/rfc6265#section-4.1.1
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/**
 * Resolves `session(store, options)` and `session(options)` into one validated shape.
 *
 * @example
 * ```ts
 * resolveOptions({ ...SAFE_DEFAULTS, store: () => new MemoryStore() }, { secret: 's3cret' })
 * ```
 */
export function resolveOptions(
  defaults: Defaults,
  storeOrOptions?: Store | SessionOptions,
  maybeOptions?: SessionOptions,
): ResolvedOptions {
  checkFirstArgument(storeOrOptions, maybeOptions)
  const [store, options] = isStore(storeOrOptions)
    ? [storeOrOptions, maybeOptions ?? {}]
    : [
        (storeOrOptions as SessionOptions | undefined)?.store,
        (storeOrOptions as SessionOptions | undefined) ?? {},
      ]
  if (typeof options !== 'object' || options === null)
    throw new TypeError('session(): options must be an object')
  if (isStore(storeOrOptions) && options.store !== undefined && options.store !== storeOrOptions) {
    throw new TypeError(
      'session(store, options): pass the store once, either first or as options.store',
    )
  }
  if (defaults.rejectUnknownOptions) rejectUnknownKeys('session()', options, KNOWN)
  if (store !== undefined && !isStore(store)) {
    throw new TypeError(
      'session(): store must have load/save/touch/destroy methods. For an express-session store ' +
        '(get/set/destroy), wrap it: session(adaptLegacyStore(store), options) ' +
        'from "concord-session/express-session"',
    )
  }

  const name = options.name ?? 'connect.sid'
  if (typeof name !== 'string' || !COOKIE_NAME.test(name)) {
    throw new TypeError(
      `session(): name must be a cookie name token such as "sid", got ${JSON.stringify(name)}`,
    )
  }

  const resolvedStore = store ?? defaults.store()
  const secrets = resolveSecrets(options.secret)
  const atRest = resolveAtRest(options, secrets, resolvedStore)
  const maxSessionsPerUser = resolveUserLimit(options.maxSessionsPerUser)
  if (maxSessionsPerUser && !enforcesUserLimit(resolvedStore)) {
    throw new TypeError(
      `session(): maxSessionsPerUser needs a store that enforces it atomically; ` +
        `${resolvedStore.constructor?.name ?? 'this store'} does not. ` +
        'Use a concord store (memory, Redis, file, PostgreSQL, or a layered store over one); an ' +
        'adapted express-session store cannot',
    )
  }
  return {
    store: resolvedStore,
    secrets,
    name,
    cookie: resolveCookie(
      name,
      defaults.cookie,
      options.cookie,
      defaults.browserCookieRules ?? true,
    ),
    genid: optionalFunction('genid', options.genid) ?? (() => randomUUID()),
    proxy: optionalBoolean('proxy', options.proxy),
    resave: optionalBoolean('resave', options.resave) ?? defaults.resave,
    rolling: optionalBoolean('rolling', options.rolling) ?? false,
    saveUninitialized:
      optionalBoolean('saveUninitialized', options.saveUninitialized) ?? defaults.saveUninitialized,
    unset: resolveUnset(options.unset),
    absoluteTimeout: optionalPositive('absoluteTimeout', options.absoluteTimeout, 'ms'),
    idleTimeout: optionalPositive('idleTimeout', options.idleTimeout, 'ms') ?? ONE_DAY_MS,
    maxSize: optionalPositive('maxSize', options.maxSize, 'characters') ?? 1_048_576,
    isValidId: defaults.isValidId ?? isValidSessionId,
    saveTimeout: optionalPositive('saveTimeout', options.saveTimeout, 'ms') ?? 2000,
    maxSessionsPerUser,
    touchAfter: optionalPositive('touchAfter', options.touchAfter, 'ms'),
    renew: resolveRenew(options.renew, resolvedStore),
    onEvent: optionalFunction('onEvent', options.onEvent),
    idHashKey: atRest.idHashKey,
    atRest,
    requestFields: defaults.requestFields ?? false,
  }
}

function resolveSecrets(secret: SessionOptions['secret']): readonly Secret[] | null {
  if (secret === undefined) return null // cookie-parser's req.secret, checked per request
  const secrets = typeof secret === 'string' || Buffer.isBuffer(secret) ? [secret] : secret
  const valid = (s: unknown) => (typeof s === 'string' || Buffer.isBuffer(s)) && s.length > 0
  if (!Array.isArray(secrets) || secrets.length === 0 || !secrets.every(valid)) {
    throw new TypeError(
      'session(): secret must be a non-empty string or Buffer, ' +
        'or a non-empty array of them (the first signs, all verify)',
    )
  }
  return Object.freeze([...secrets])
}

function resolveCookie(
  name: string,
  base: Readonly<CookieAttributes>,
  cookie: SessionOptions['cookie'],
  browserRules: boolean,
): ResolvedOptions['cookie'] {
  if (typeof cookie === 'function') {
    return (req) => {
      const attributes = { ...base, ...cookie(req) }
      validateCookieAttributes(name, attributes, browserRules)
      return attributes
    }
  }
  if (cookie !== undefined && (typeof cookie !== 'object' || cookie === null)) {
    throw new TypeError(
      'session(): cookie must be an object of attributes ' +
        'or a function of the request that returns one',
    )
  }
  const attributes = Object.freeze({ ...base, ...(cookie ?? {}) })
  validateCookieAttributes(name, attributes, browserRules)
  return () => attributes
}

function resolveUnset(unset: unknown): 'destroy' | 'keep' {
  if (unset === undefined) return 'keep'
  if (unset === 'destroy' || unset === 'keep') return unset
  throw new TypeError(`session(): unset must be "destroy" or "keep", got ${JSON.stringify(unset)}`)
}

function optionalBoolean(name: string, value: unknown): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value
  throw new TypeError(`session(): ${name} must be true or false, got ${JSON.stringify(value)}`)
}

function optionalPositive(name: string, value: unknown, unit: string): number | undefined {
  if (value === undefined) return undefined
  requirePositive('session()', name, value, unit)
  return value as number
}

function optionalFunction<T>(name: string, value: T | undefined): T | undefined {
  if (value === undefined || typeof value === 'function') return value
  throw new TypeError(`session(): ${name} must be a function, got ${typeof value}`)
}
