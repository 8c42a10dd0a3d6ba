import type {
  Clearable,
  Closable,
  CookieOverrides,
  Countable,
  LoadOptions,
  SaveResult,
  SessionChange,
  SessionRecord,
  Store,
  UserIndex,
} from '../lib/store.js'
import { StoreError } from '../lib/store.js'
import { applyChange, withOwner } from '../lib/session-data.js'
import { rejectUnknownKeys, requirePositive } from '../lib/check-options.js'
import { warnInProduction } from '../lib/production-warning.js'
import {
  LifecycleListeners,
  type ReportsLifecycle,
  type StoreNoticeListener,
} from '../lib/store-notices.js'

export interface MemoryStoreOptions {
  /**
   * The most sessions held at once. Creating one more evicts the least recently used.
   * Unbounded by default.
   */
  max?: number
  /** How often, in ms, expired sessions are swept. Default 60 000. */
  sweepInterval?: number
}

/**
 * One session, kept small: a class (one hidden class for all entries), times relative to the
 * store's start (small integers, held unboxed, where epoch ms would each be a separate heap
 * number), one shared object for "no cookie overrides", and the owner in a map of its own
 * since most sessions have none. Data stays JSON text in an ordinary object, not a
 * null-prototype one, which V8 would keep in slower, larger dictionary mode.
 */
class Entry {
  constructor(
    public data: Record<string, string>,
    public cookie: CookieOverrides,
    /** ms since the store's base. */
    public created: number,
    /** ms since the store's base. */
    public expires: number,
    public idleTimeout: number,
    public version: number,
  ) {}
}

const NO_COOKIE: CookieOverrides = Object.freeze({})

/**
 * An in-process store with the full contract: versions, conflicts, TTL, touch-on-load and the
 * per-user index. It holds JSON text, never live objects, so data that cannot be serialized
 * fails at save exactly as it would with Redis.
 *
 * Expiry is active: an unref'd timer pops due sessions from a min-heap, so a sweep costs
 * in proportion to the sessions that expired, not to all sessions. Each session has one heap
 * entry; a touched session is filed again when its old time comes up.
 *
 * For one process only. Use the Redis or file store to share sessions between processes.
 *
 * @example
 * ```ts
 * import session, { MemoryStore } from 'concord-session'
 * const store = new MemoryStore({ max: 100_000 })
 * app.use(session(store, { secret: process.env.SESSION_SECRET }))
 * ```
 */
export class MemoryStore
  implements Store, UserIndex, Countable, Clearable, Closable, ReportsLifecycle
{
  readonly #sessions = new Map<string, Entry>()
  /** Owner of each session that has one. */
  readonly #owners = new Map<string, string>()
  readonly #byUser = new Map<string, Set<string>>()
  /** Epoch ms that entry times count from. */
  readonly #base = Date.now()
  readonly #expiry = new ExpiryHeap()
  readonly #max: number
  readonly #timer: NodeJS.Timeout
  readonly #notices = new LifecycleListeners()

  constructor(options: MemoryStoreOptions = {}) {
    rejectUnknownKeys('MemoryStore', options ?? {}, ['max', 'sweepInterval'], {
      ttl: "a session's lifetime follows its cookie: set session({ cookie: { maxAge } }), and idleTimeout for browser-session cookies",
      checkPeriod: "that is memorystore's option; use sweepInterval",
    })
    warnInProduction('MemoryStore')
    const { max = Infinity, sweepInterval = 60_000 } = options
    if (max !== Infinity && (!Number.isInteger(max) || max < 1)) {
      throw new TypeError(`MemoryStore: max must be a positive integer, got ${String(max)}`)
    }
    requirePositive('MemoryStore', 'sweepInterval', sweepInterval, 'ms')
    this.#max = max
    this.#timer = setInterval(() => this.sweep(), sweepInterval)
    this.#timer.unref()
  }

  async load(id: string, options: LoadOptions = {}): Promise<SessionRecord | null> {
    const entry = this.#live(id)
    if (!entry) return null
    if (options.touchAt !== undefined) {
      const base = this.#base
      const idle = options.touchAt + entry.idleTimeout
      const expiresAt =
        options.absoluteTimeout === undefined
          ? idle
          : Math.min(idle, base + entry.created + options.absoluteTimeout)
      if (expiresAt <= Date.now()) {
        this.#expire(id, 'load')
        return null
      }
      this.#setExpiry(id, entry, expiresAt)
    }
    if (this.#max !== Infinity) this.#markUsed(id, entry)
    return this.#toRecord(id, entry)
  }

  async save(id: string, change: SessionChange): Promise<SaveResult> {
    // Checked in the same tick as the write below: nothing can land after the deadline.
    if (change.deadline !== undefined && Date.now() >= change.deadline) {
      throw new StoreError(`MemoryStore: save of ${id} is past its deadline; nothing was written`, {
        code: 'ETIMEDOUT',
      })
    }
    const entry = this.#live(id)
    if (change.expectedVersion === null) {
      if (entry) return { ok: false, reason: 'conflict', current: this.#toRecord(id, entry) }
    } else {
      if (!entry) return { ok: false, reason: 'gone' }
      if (entry.version !== change.expectedVersion)
        return { ok: false, reason: 'conflict', current: this.#toRecord(id, entry) }
    }

    const data = applyChange(entry?.data, change)
    const cookie = hasKeys(change.cookie) ? { ...change.cookie } : NO_COOKIE
    const userId = change.userId ?? undefined
    if (entry) {
      entry.data = data
      entry.cookie = cookie
      entry.idleTimeout = change.idleTimeout
      entry.version++
      this.#link(id, this.#owners.get(id), userId)
      this.#setExpiry(id, entry, change.expiresAt)
      return { ok: true, version: entry.version }
    }
    if (this.#sessions.size >= this.#max) this.#evictLeastRecentlyUsed()
    const base = this.#base
    const created = new Entry(
      data,
      cookie,
      change.createdAt - base,
      change.expiresAt - base,
      change.idleTimeout,
      1,
    )
    this.#link(id, undefined, userId)
    this.#sessions.set(id, created)
    this.#expiry.push(change.expiresAt, id)
    return { ok: true, version: 1 }
  }

  async touch(id: string, expiresAt: number): Promise<void> {
    const entry = this.#live(id)
    if (!entry) return
    this.#setExpiry(id, entry, expiresAt)
  }

  async destroy(id: string): Promise<void> {
    if (this.#sessions.has(id)) this.#remove(id)
  }

  async listByUser(userId: string): Promise<string[]> {
    const ids = this.#byUser.get(userId)
    if (!ids) return []
    return [...ids].filter((id) => this.#live(id, 'prune') !== undefined)
  }

  async destroyByUser(userId: string): Promise<number> {
    const ids = await this.listByUser(userId)
    for (const id of ids) await this.destroy(id)
    this.#byUser.delete(userId)
    this.#notices.signedOut(userId, ids.length)
    return ids.length
  }

  /**
   * Reports sessions found expired (at a load, or by the sweep) and `destroyByUser` calls; the
   * middleware turns them into `expired` and `signedOutEverywhere` events.
   *
   * @example
   * ```ts
   * const stop = store.onLifecycle((notice) => console.log(notice.type))
   * ```
   */
  onLifecycle(listener: StoreNoticeListener): () => void {
    return this.#notices.add(listener)
  }

  async count(): Promise<number> {
    this.sweep()
    return this.#sessions.size
  }

  async clear(): Promise<void> {
    this.#sessions.clear()
    this.#owners.clear()
    this.#byUser.clear()
    this.#expiry.clear()
  }

  async close(): Promise<void> {
    clearInterval(this.#timer)
  }

  /** Removes every session whose expiry has passed. Runs on the timer; callable directly. */
  sweep(now = Date.now()): void {
    const expiry = this.#expiry
    while (expiry.size > 0 && expiry.peekAt() <= now) {
      const at = expiry.peekAt()
      const id = expiry.peekId()
      expiry.pop()
      const entry = this.#sessions.get(id)
      if (!entry) continue // destroyed
      const expiresAt = this.#base + entry.expires
      if (expiresAt <= now) this.#expire(id, 'prune')
      // Touched since it was filed: file it again at its new time. An entry keeps one filing
      // at or before its expiry, so a touch costs no heap work.
      else if (at < expiresAt) expiry.push(expiresAt, id)
    }
  }

  /** The entry if it exists and has not expired; an expired one is removed on sight. */
  #live(id: string, seenAt: 'load' | 'prune' = 'load'): Entry | undefined {
    const entry = this.#sessions.get(id)
    if (entry && this.#base + entry.expires <= Date.now()) {
      this.#expire(id, seenAt)
      return undefined
    }
    return entry
  }

  #expire(id: string, seenAt: 'load' | 'prune'): void {
    const userId = this.#owners.get(id)
    this.#remove(id)
    this.#notices.expired(id, seenAt, userId)
  }

  #setExpiry(id: string, entry: Entry, expiresAt: number): void {
    const earlier = expiresAt < this.#base + entry.expires
    entry.expires = expiresAt - this.#base
    // Moved earlier (a shorter lifetime): file it at the new time too, so a sweep finds it then.
    if (earlier) this.#expiry.push(expiresAt, id)
  }

  #toRecord(id: string, entry: Entry): SessionRecord {
    // Copies, so a caller may change what it loaded without reaching the store's copy.
    const userId = this.#owners.get(id)
    const record = withOwner(
      {
        data: { ...entry.data },
        cookie: entry.cookie === NO_COOKIE ? {} : { ...entry.cookie },
        createdAt: this.#base + entry.created,
        expiresAt: this.#base + entry.expires,
        idleTimeout: entry.idleTimeout,
        version: entry.version,
      },
      userId,
    )
    return record
  }

  #remove(id: string): void {
    this.#sessions.delete(id)
    this.#link(id, this.#owners.get(id), undefined)
  }

  #link(id: string, from: string | undefined, to: string | undefined): void {
    if (from === to) return
    if (to === undefined) this.#owners.delete(id)
    else this.#owners.set(id, to)
    if (from !== undefined) {
      const ids = this.#byUser.get(from)
      ids?.delete(id)
      if (ids?.size === 0) this.#byUser.delete(from)
    }
    if (to !== undefined) {
      let ids = this.#byUser.get(to)
      if (!ids) this.#byUser.set(to, (ids = new Set()))
      ids.add(id)
    }
  }

  /** A Map iterates in insertion order, so moving a used entry to the end keeps LRU order. */
  #markUsed(id: string, entry: Entry): void {
    this.#sessions.delete(id)
    this.#sessions.set(id, entry)
  }

  #evictLeastRecentlyUsed(): void {
    const oldest = this.#sessions.keys().next()
    if (oldest.done)
      throw new StoreError('MemoryStore: max reached and nothing to evict', { code: 'EFULL' })
    this.#remove(oldest.value)
  }
}

function hasKeys(object: object): boolean {
  for (const key in object) if (Object.hasOwn(object, key)) return true
  return false
}

/** A binary min-heap of (time, id), earliest first. */
class ExpiryHeap {
  #times: number[] = []
  #ids: string[] = []

  get size(): number {
    return this.#times.length
  }

  peekAt(): number {
    return this.#times[0]!
  }

  peekId(): string {
    return this.#ids[0]!
  }

  push(at: number, id: string): void {
    const times = this.#times
    const ids = this.#ids
    let i = times.length
    times.push(at)
    ids.push(id)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (times[parent]! <= at) break
      times[i] = times[parent]!
      ids[i] = ids[parent]!
      i = parent
    }
    times[i] = at
    ids[i] = id
  }

  pop(): void {
    const times = this.#times
    const ids = this.#ids
    const lastAt = times.pop()!
    const lastId = ids.pop()!
    const n = times.length
    if (n === 0) return
    let i = 0
    for (;;) {
      let child = 2 * i + 1
      if (child >= n) break
      if (child + 1 < n && times[child + 1]! < times[child]!) child++
      if (times[child]! >= lastAt) break
      times[i] = times[child]!
      ids[i] = ids[child]!
      i = child
    }
    times[i] = lastAt
    ids[i] = lastId
  }

  clear(): void {
    this.#times = []
    this.#ids = []
  }
}
