/**
 * The Store contract. Every store (memory, Redis, file, the express-session adapter)
 * depends on this file alone, and the core talks to stores only through it.
 *
 * Session data travels as JSON text per top-level key: the core serializes each key once to
 * detect changes, so a store never stringifies again, and a Redis hash field or a file can hold
 * the text as it is.
 */
import type { UserLimit } from './user-limit.js'

export type { UserLimit } from './user-limit.js'
export * from './capabilities.js'

/** Per-session cookie settings that differ from the middleware's configured defaults. */
export interface CookieOverrides {
  /** Lifetime in ms; `null` makes a browser-session cookie. */
  originalMaxAge?: number | null
  domain?: string
  path?: string
  httpOnly?: boolean
  /** `'auto'` sets Secure when the request arrived over HTTPS. */
  secure?: boolean | 'auto'
  sameSite?: boolean | 'lax' | 'strict' | 'none'
  /**
   * CHIPS:
   * https://developer.mozilla.org/docs/Web/Privacy/Guides/Privacy_sandbox/Partitioned_cookies
   */
  partitioned?: boolean
  priority?: 'low' | 'medium' | 'high'
}

/** One stored session, as a store returns it from `load` and in a conflict. */
export interface SessionRecord {
  /** The user's top-level keys, each as the JSON text of its value. */
  data: Record<string, string>
  /** Per-session cookie settings (only what the app changed for this session). */
  cookie: CookieOverrides
  /** Epoch ms the session was created, for the absolute timeout. */
  createdAt: number
  /** Epoch ms of the idle expiry. The store forgets the session at this time. */
  expiresAt: number
  /** The idle period in ms that a touch extends `expiresAt` by. */
  idleTimeout: number
  /** Bumped by every successful save; starts at 1. */
  version: number
  /** Owner, for the per-user index. */
  userId?: string
  /**
   * Epoch ms this id was issued by {@link Renewable.renew}; absent for an id never renewed
   * (its age is then `createdAt`'s).
   */
  renewedAt?: number
  /**
   * Set when the id asked for was renewed within its grace window: the id the session lives
   * under now. The record is that session's.
   */
  renewedTo?: string
  /**
   * Epoch ms at which each key with a lifetime of its own expires (`keyTtl`). A store's `load`
   * never returns a key whose expiry is at or before its now, nor that key's entry here.
   * Absent: no key has a lifetime of its own.
   */
  keyExpires?: Record<string, number>
}

/** What one save writes. Only changed keys travel. */
export interface SessionChange {
  /** Keys to write, each as JSON text. */
  set: Record<string, string>
  /** Keys to delete. */
  unset: string[]
  /** Replaces the stored cookie overrides. */
  cookie: CookieOverrides
  createdAt: number
  expiresAt: number
  idleTimeout: number
  /** The owner after this save; `null` unlinks the session from its user. */
  userId: string | null
  /**
   * Replaces the stored per-key expiries (see `SessionRecord.keyExpires`); empty clears them.
   * Absent means the expected version had none either (the core sends `{}` to clear), so a
   * store may skip clearing then.
   */
  keyExpires?: Record<string, number>
  /**
   * `null` creates the session and fails if the id exists; a number must equal the stored
   * version.
   */
  expectedVersion: number | null
  /**
   * Epoch ms (the app's clock) after which this save must not take effect. A store that cannot
   * apply it by then rejects with a StoreError whose code is `'ETIMEDOUT'`, and guarantees the
   * write never lands later: the check happens where the write happens (in the Redis script, in
   * the SQL statement, under the file lock before the rename), not only in the waiting caller.
   * So a request told "not saved" is never saved. Absent: no deadline.
   */
  deadline?: number
  /**
   * Present when this save may link the session to `userId` under `maxSessionsPerUser`. A store
   * that declares {@link UserLimitStore.enforcesUserLimit} applies it only if the stored owner
   * differs from `userId` (a link, not a save of an already linked session), atomically with
   * the write: it counts the user's other live sessions and, at `max` or more, either answers
   * `{ ok: false, reason: 'userLimit' }` writing nothing, or destroys the oldest (earliest
   * `createdAt`, see `planUserLimit`) and names them in `evicted`. Other stores ignore it.
   */
  userLimit?: UserLimit
}

export type SaveResult =
  | {
      ok: true
      version: number
      /** Sessions of the same user this save destroyed under `userLimit`, if any. */
      evicted?: string[]
      /** The id was renewed and the save followed it into the session this names. */
      renewedTo?: string
    }
  | { ok: false; reason: 'conflict'; current: SessionRecord }
  | { ok: false; reason: 'gone' }
  /** `userLimit` with `onLimit: 'refuse'`: the user is at the limit, and nothing was written. */
  | { ok: false; reason: 'userLimit' }

/** How `load` may extend the idle expiry in the same call (one round trip for a read). */
export interface LoadOptions {
  /**
   * Touch at this epoch ms:
   * `expiresAt = min(touchAt + idleTimeout, createdAt + absoluteTimeout)`.
   */
  touchAt?: number
  /** Caps the touch at `createdAt + absoluteTimeout`. */
  absoluteTimeout?: number
  /**
   * Touch throttling, in ms. A store whose touch costs a write may skip it while the touch would
   * move the stored expiry later by less than this, so the stored expiry stays within
   * `touchAfter` ms before the exact one: `exact - touchAfter <= stored <= exact`. The record
   * returned carries the stored expiry. Stores whose touch rides on the read ignore it.
   */
  touchAfter?: number
}

/**
 * A session store. Promise-only; every method may reject with a {@link StoreError}.
 *
 * Semantics every store keeps, checked by the shared conformance suite (test/store-conformance.ts):
 * - `load` returns `null` for an unknown or expired id (a record whose `expiresAt <= now`).
 * - `load` omits every key whose own expiry (`keyExpires`) is at or before now.
 * - `save` is atomic: the version check and the write happen together. `expectedVersion: null`
 *   creates; a number must match. A session that vanished since it was loaded is `'gone'` and
 *   is not brought back.
 * - A store maps its own "not found" to `null` and every other failure to a `StoreError`.
 *
 * @example
 * ```ts
 * import session, { MemoryStore } from 'concord-session'
 * const store = new MemoryStore()
 * app.use(session(store, { secret: process.env.SESSION_SECRET }))
 * ```
 */
export interface Store {
  load(id: string, options?: LoadOptions): Promise<SessionRecord | null>
  save(id: string, change: SessionChange): Promise<SaveResult>
  /** Sets the idle expiry of an existing session; a no-op for an unknown id. */
  touch(id: string, expiresAt: number): Promise<void>
  /** Removes the session and its place in the per-user index; a no-op for an unknown id. */
  destroy(id: string): Promise<void>
}

/**
 * Whether a touch that would set `touched` should be written over the stored `stored`, under
 * `touchAfter` (see {@link LoadOptions.touchAfter}): always when it moves the expiry earlier,
 * and when it moves it later by `touchAfter` or more.
 *
 * @example
 * ```ts
 * if (touchIsDue(record.expiresAt, touched, options.touchAfter)) await write(touched)
 * ```
 */
export function touchIsDue(stored: number, touched: number, touchAfter = 0): boolean {
  return touched < stored || touched - stored >= touchAfter
}

/**
 * A store failed: unreachable, timed out, full, or holding data it cannot read.
 * The middleware passes it to `next(err)`; its `status` is 503 so the request fails closed.
 *
 * @example
 * ```ts
 * app.use((err, req, res, next) => {
 *   if (err instanceof StoreError) return res.status(err.status).send('Try again shortly')
 *   next(err)
 * })
 * ```
 */
export class StoreError extends Error {
  override readonly name = 'StoreError'
  readonly status = 503
  readonly statusCode = 503
  /** http-errors convention: the message is for logs, not for the client. */
  readonly expose = false
  readonly code: string

  constructor(message: string, options: { cause?: unknown; code?: string } = {}) {
    super(message, { cause: options.cause })
    this.code = options.code ?? 'ESTORE'
  }
}

// The expiry rule lives in one pure module that stores may import directly too.
export { touchedExpiry } from './expiry.js'
export { withoutExpiredKeys, expiredKeys, type KeyExpiries } from './key-expiry.js'

/**
 * Session ids are 1 to 256 characters from a cookie-safe set: letters, digits and `_-+=.`,
 * not starting with a dot. The default id is a UUID v4; express-session's uid-safe ids fit too.
 * The core checks every id read from a cookie or made by `genid`, so a store never sees another
 * shape.
 * See https://owasp.org/www-community/attacks/Session_fixation
 *
 * @example
 * ```ts
 * isValidSessionId('2f1c6a9e-7f5e-4a8e-9a57-0c1d2e3f4a5b') // true
 * isValidSessionId('../etc/passwd')                          // false
 * ```
 */
export function isValidSessionId(id: unknown): id is string {
  return typeof id === 'string' && SESSION_ID.test(id)
}

const SESSION_ID = /^[A-Za-z0-9_\-+=][A-Za-z0-9_\-+=.]{0,255}$/
