/**
 * adaptLegacyStore: any express-session store (get/set/destroy with callbacks, optional touch,
 * all, length, clear) as a promise-only concord Store.
 *
 * Guarantees, precisely:
 * - Within one process (one adapter), every operation on one session id runs one at a time,
 *   so a save's version check and its write are exact, and a destroy cannot be undone by a
 *   save that read before it.
 * - Across processes the check and the write are two store calls (`get`, then `set`): a write
 *   from another process that lands between them is overwritten. The window is one store
 *   round trip. A concord store (Redis, file) closes it; a legacy store has no way to.
 * - Expiry: a store with `touch` decides expiry itself (its TTL); the adapter adds the absolute
 *   timeout. A store without `touch` gets the expiry written into the blob and checked here.
 * - Touch throttling judges by the later of the blob's expiry and the one this process last
 *   wrote (written-expiries.ts), since a store's `touch` may move only its own TTL.
 */
import type { CookieAttributes } from '../cookie.js'
import { requirePositive } from '../check-options.js'
import { KeyedQueue } from '../keyed-queue.js'
import type {
  Clearable,
  Closable,
  Countable,
  LoadOptions,
  SaveResult,
  SessionChange,
  SessionRecord,
  Store,
  UserIndex,
} from '../store.js'
import { StoreError, touchIsDue, touchedExpiry } from '../store.js'
import { applyChange, withOwner } from '../session-data.js'
import { isCode, toStoreError } from '../store-errors.js'
import { callLegacy } from './callback.js'
import { WrittenExpiries } from './written-expiries.js'
import type { StoresRawIds } from '../at-rest-options.js'
import { fromBlob, META_KEY, toBlob, type ExpressSessionData } from '../formats/express-session.js'
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
 * Wraps an express-session store (connect-redis, connect-pg-simple, connect-mongo, memorystore,
 * session-file-store, ...) so the promise-only core can use it. The per-user index
 * (`isUserIndex`) exists only where the store has `all()`, `count` (`isCountable`) where it has
 * `all()` or `length()`, and `clear` (`isClearable`) where it has `clear()`.
 *
 * @example
 * ```ts
 * import session from 'concord-session'
 * import { adaptLegacyStore } from 'concord-session/express-session'
 * import { RedisStore } from 'connect-redis'
 *
 * app.use(session(adaptLegacyStore(new RedisStore({ client })), { secret: process.env.SESSION_SECRET! }))
 * ```
 */
export function adaptLegacyStore(
  store: LegacyStore,
  options: AdaptLegacyStoreOptions = {},
): LegacyStoreAdapter {
  if (!isLegacyStore(store)) {
    throw new TypeError(
      "adaptLegacyStore(store): store must have express-session's get(sid, cb), set(sid, " +
        'session, cb) and destroy(sid, cb) methods',
    )
  }
  const timeout = options.timeout ?? 5_000
  requirePositive('adaptLegacyStore(store, { timeout })', 'timeout', timeout, 'ms')
  if (
    options.cookie !== undefined &&
    (typeof options.cookie !== 'object' || options.cookie === null)
  ) {
    throw new TypeError(
      'adaptLegacyStore(store, { cookie }): cookie must be the cookie options object you give ' +
        'session()',
    )
  }
  const written = new WrittenExpiries(options.rememberExpiries)
  return new Adapter(store, timeout, options.cookie, options.checkNewIds !== false, written)
}

/** Errors the wrapped store reported itself, each with the StoreError it was wrapped in. */
const ownErrors = new WeakMap<object, unknown>()

/**
 * The express-session store's own error inside a StoreError from an adapter (the error its
 * callback or promise gave), or `err` itself when the adapter made it (a timeout, a
 * disconnected store) or it did not come from an adapter.
 *
 * @example
 * ```ts
 * app.use((err, req, res, next) => next(storeOwnError(err))) // express-session's error shape
 * ```
 */
export function storeOwnError(err: unknown): unknown {
  return typeof err === 'object' && err !== null && ownErrors.has(err) ? ownErrors.get(err) : err
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

class Adapter implements LegacyStoreAdapter {
  readonly legacy: LegacyStore
  /** Other express-session apps read the store by id: ids stay raw unless `hashIds: true`. */
  readonly storesRawIds = true
  readonly #timeout: number
  readonly #cookie: CookieAttributes | undefined
  readonly #queue = new KeyedQueue()
  readonly #storeExpires: boolean
  readonly #checkNewIds: boolean
  readonly #written: WrittenExpiries
  #connected = true
  readonly #onDisconnect = (): void => {
    this.#connected = false
  }
  readonly #onConnect = (): void => {
    this.#connected = true
  }

  constructor(
    legacy: LegacyStore,
    timeout: number,
    cookie: CookieAttributes | undefined,
    checkNewIds: boolean,
    written: WrittenExpiries,
  ) {
    this.legacy = legacy
    this.#written = written
    this.#timeout = timeout
    this.#cookie = cookie
    this.#checkNewIds = checkNewIds
    // Stores with touch() keep their own TTL (connect-redis EXPIREs the key and leaves the blob
    // as it was), so the blob's recorded expiry is only a lower bound there.
    this.#storeExpires = typeof legacy.touch === 'function'
    if (typeof legacy.on === 'function') {
      legacy.on('disconnect', this.#onDisconnect)
      legacy.on('connect', this.#onConnect)
    }
    // The capabilities the wrapped store can back, found with isUserIndex, isCountable, ...
    if (typeof legacy.all === 'function') {
      const index: UserIndex = {
        listByUser: (userId) => this.#listByUser(userId),
        destroyByUser: (userId) => this.#destroyByUser(userId),
      }
      Object.assign(this, index)
    }
    if (typeof legacy.all === 'function' || typeof legacy.length === 'function') {
      const countable: Countable = { count: () => this.#count() }
      Object.assign(this, countable)
    }
    if (typeof legacy.clear === 'function') {
      const clearable: Clearable = { clear: () => this.#clear() }
      Object.assign(this, clearable)
    }
  }

  load(id: string, options: LoadOptions = {}): Promise<SessionRecord | null> {
    const { touchAt, absoluteTimeout, touchAfter } = options
    if (touchAt === undefined) return this.#read(id, Date.now())
    return this.#queue.run(id, async () => {
      const now = Date.now()
      const record = await this.#read(id, now)
      if (!record) return null
      const touched = touchedExpiry(record, touchAt, absoluteTimeout)
      if (touched <= now) {
        // Past the absolute timeout: forget it rather than serve it once more.
        this.#written.forget(id)
        await this.#call('destroy', id, [id])
        return null
      }
      // The recorded expiry and the one this process wrote are each at most the store's own
      // (see #storeExpires; a racing touch from another process aside), so the real expiry
      // stays within touchAfter of the exact one when this skips the write.
      const stored = this.#written.known(id, record)
      if (!touchIsDue(stored, touched, touchAfter)) {
        record.expiresAt = stored
        return record
      }
      await this.#writeTouch(id, record, touched)
      return record
    })
  }

  save(id: string, change: SessionChange): Promise<SaveResult> {
    return this.#queue.run(id, async () => {
      const current =
        change.expectedVersion === null && !this.#checkNewIds
          ? null
          : await this.#read(id, Date.now())
      if (change.expectedVersion === null) {
        if (current) return { ok: false, reason: 'conflict', current }
      } else {
        if (!current) return { ok: false, reason: 'gone' }
        if (current.version !== change.expectedVersion)
          return { ok: false, reason: 'conflict', current }
      }
      const data = applyChange(current?.data, change)
      const record = withOwner(
        {
          data,
          cookie: change.cookie,
          // A session first written by express-session has no real createdAt: this write sets it.
          createdAt: current && current.version > 0 ? current.createdAt : change.createdAt,
          expiresAt: change.expiresAt,
          idleTimeout: change.idleTimeout,
          version: (current?.version ?? 0) + 1,
        },
        change.userId,
      )
      await this.#call('set', id, [id, toBlob(record, this.#cookie)])
      this.#written.wrote(id, record, record.expiresAt)
      return { ok: true, version: record.version }
    })
  }

  touch(id: string, expiresAt: number): Promise<void> {
    return this.#queue.run(id, async () => {
      const record = await this.#read(id, Date.now())
      // Never create a session by touching it (session-file-store's touch would).
      if (!record) return
      await this.#writeTouch(id, record, expiresAt)
    })
  }

  destroy(id: string): Promise<void> {
    return this.#queue.run(id, async () => {
      this.#written.forget(id)
      await this.#call('destroy', id, [id])
    })
  }

  async close(): Promise<void> {
    // The app owns the legacy store and its connections; only our listeners are ours.
    const off = this.legacy.off ?? this.legacy.removeListener
    if (typeof off === 'function') {
      off.call(this.legacy, 'disconnect', this.#onDisconnect)
      off.call(this.legacy, 'connect', this.#onConnect)
    }
  }

  /** The live record, or null. */
  async #read(id: string, now: number): Promise<SessionRecord | null> {
    const blob = await this.#call('get', id, [id])
    if (blob === undefined || blob === null) {
      this.#written.forget(id)
      return null
    }
    const record = fromBlob(id, blob, now, this.#cookie)
    return this.#live(record, now) ? record : null
  }

  #live(record: SessionRecord, now: number): boolean {
    return this.#storeExpires || record.expiresAt > now
  }

  /** Persists `expiresAt` for `record`, just read: by the store's touch, or a blob rewrite. */
  async #writeTouch(id: string, record: SessionRecord, expiresAt: number): Promise<void> {
    const recorded = record.expiresAt
    record.expiresAt = expiresAt
    const blob = toBlob(record, this.#cookie)
    if (this.#storeExpires) {
      await this.#call('touch', id, [id, blob])
      // Whether touch() rewrote the blob is the store's business: remember the blob as it was.
      this.#written.wrote(id, { version: record.version, expiresAt: recorded }, expiresAt)
    } else {
      await this.#call('set', id, [id, blob])
      this.#written.wrote(id, record, expiresAt)
    }
  }

  async #listByUser(userId: string): Promise<string[]> {
    const now = Date.now()
    const ids: string[] = []
    for (const [id, blob] of await this.#all()) {
      const meta = (blob as ExpressSessionData)[META_KEY] as { userId?: unknown } | undefined
      if (meta?.userId !== userId) continue
      if (this.#live(fromBlob(id, blob, now, this.#cookie), now)) ids.push(id)
    }
    return ids
  }

  async #destroyByUser(userId: string): Promise<number> {
    const ids = await this.#listByUser(userId)
    for (const id of ids) await this.destroy(id)
    return ids.length
  }

  async #count(): Promise<number> {
    if (typeof this.legacy.all !== 'function') return Number(await this.#call('length', '*', []))
    const now = Date.now()
    let live = 0
    for (const [id, blob] of await this.#all())
      if (this.#live(fromBlob(id, blob, now, this.#cookie), now)) live++
    return live
  }

  async #clear(): Promise<void> {
    await this.#call('clear', '*', [])
  }

  /**
   * `all()` normalized: express-session answers an object keyed by id, connect-redis an array of
   * sessions with `id`.
   */
  async #all(): Promise<Array<[string, object]>> {
    const result = await this.#call('all', '*', [])
    const entries: Array<[string, object]> = []
    if (Array.isArray(result)) {
      for (const sess of result) {
        if (
          typeof sess === 'object' &&
          sess !== null &&
          typeof (sess as { id?: unknown }).id === 'string'
        ) {
          const { id, ...blob } = sess as { id: string }
          entries.push([id, blob])
        }
      }
    } else if (typeof result === 'object' && result !== null) {
      for (const [id, sess] of Object.entries(result))
        if (typeof sess === 'object' && sess !== null) entries.push([id, sess])
    }
    return entries
  }

  /** One store call, failing closed: every failure is a StoreError (503) naming the call. */
  async #call(method: string, id: string, args: unknown[]): Promise<unknown> {
    if (!this.#connected) {
      throw new StoreError(
        `session store is disconnected (it emitted "disconnect"); ${method} for session ${id} ` +
          `fails until it emits "connect"`,
        { code: 'EDISCONNECTED' },
      )
    }
    try {
      return await callLegacy(this.legacy, method, args, this.#timeout)
    } catch (err) {
      if (err instanceof StoreError) throw err
      // express-session treats ENOENT from get as "no such session" (session-file-store's miss).
      if (method === 'get' && isCode(err, 'ENOENT')) return undefined
      const wrapped = toStoreError(
        err,
        (why) => `session store ${method} failed for session ${id}: ${why}`,
      )
      ownErrors.set(wrapped, err)
      throw wrapped
    }
  }
}
