import type { LoadOptions, SaveResult, SessionChange, SessionRecord, Store } from '../lib/store.js'
import { StoreError, touchedExpiry } from '../lib/store.js'
import { rejectUnknownKeys } from '../lib/check-options.js'
import { warnInProduction } from '../lib/production-warning.js'

export interface MemoryStoreOptions {
  /**
   * The most sessions held at once. Creating one more evicts the least recently used.
   * Unbounded by default.
   */
  max?: number
  /** How often, in ms, expired sessions are swept. Default 60 000. */
  sweepInterval?: number
}

interface Entry extends Omit<SessionRecord, 'userId'> {
  userId: string | undefined
  /** The expiry time this entry is filed under in the heap. */
  scheduledAt: number
}

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
export class MemoryStore implements Store {
  readonly #sessions = new Map<string, Entry>()
  readonly #byUser = new Map<string, Set<string>>()
  readonly #expiry = new ExpiryHeap()
  readonly #max: number
  readonly #timer: NodeJS.Timeout

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
    if (!Number.isFinite(sweepInterval) || sweepInterval <= 0) {
      throw new TypeError(`MemoryStore: sweepInterval must be a positive number of ms, got ${String(sweepInterval)}`)
    }
    this.#max = max
    this.#timer = setInterval(() => this.sweep(), sweepInterval)
    this.#timer.unref()
  }

  async load(id: string, options: LoadOptions = {}): Promise<SessionRecord | null> {
    const entry = this.#live(id)
    if (!entry) return null
    if (options.touchAt !== undefined) {
      entry.expiresAt = touchedExpiry(entry, options.touchAt, options.absoluteTimeout)
      if (entry.expiresAt <= Date.now()) {
        this.#remove(id, entry)
        return null
      }
      this.#reschedule(id, entry)
    }
    if (this.#max !== Infinity) this.#markUsed(id, entry)
    return toRecord(entry)
  }

  async save(id: string, change: SessionChange): Promise<SaveResult> {
    const entry = this.#live(id)
    if (change.expectedVersion === null) {
      if (entry) return { ok: false, reason: 'conflict', current: toRecord(entry) }
    } else {
      if (!entry) return { ok: false, reason: 'gone' }
      if (entry.version !== change.expectedVersion) return { ok: false, reason: 'conflict', current: toRecord(entry) }
    }

    // A null prototype keeps a key such as "__proto__" an ordinary key.
    const data: Record<string, string> = entry ? entry.data : Object.create(null)
    for (const key of change.unset) delete data[key]
    for (const key of Object.keys(change.set)) data[key] = change.set[key]!
    const next: Entry = {
      data,
      cookie: { ...change.cookie },
      createdAt: entry ? entry.createdAt : change.createdAt,
      expiresAt: change.expiresAt,
      idleTimeout: change.idleTimeout,
      version: entry ? entry.version + 1 : 1,
      userId: change.userId ?? undefined,
      scheduledAt: entry ? entry.scheduledAt : Infinity,
    }
    if (!entry && this.#sessions.size >= this.#max) this.#evictLeastRecentlyUsed()
    this.#link(id, entry?.userId, next.userId)
    this.#sessions.set(id, next)
    this.#reschedule(id, next)
    return { ok: true, version: next.version }
  }

  async touch(id: string, expiresAt: number): Promise<void> {
    const entry = this.#live(id)
    if (!entry) return
    entry.expiresAt = expiresAt
    this.#reschedule(id, entry)
  }

  async destroy(id: string): Promise<void> {
    const entry = this.#sessions.get(id)
    if (entry) this.#remove(id, entry)
  }

  async listByUser(userId: string): Promise<string[]> {
    const ids = this.#byUser.get(userId)
    if (!ids) return []
    return [...ids].filter((id) => this.#live(id) !== undefined)
  }

  async destroyByUser(userId: string): Promise<number> {
    const ids = await this.listByUser(userId)
    for (const id of ids) await this.destroy(id)
    this.#byUser.delete(userId)
    return ids.length
  }

  async count(): Promise<number> {
    this.sweep()
    return this.#sessions.size
  }

  async clear(): Promise<void> {
    this.#sessions.clear()
    this.#byUser.clear()
    this.#expiry.clear()
  }

  async close(): Promise<void> {
    clearInterval(this.#timer)
  }

  /** Removes every session whose expiry has passed. Runs on the timer; callable directly. */
  sweep(now = Date.now()): void {
    for (let due = this.#expiry.peek(); due && due.at <= now; due = this.#expiry.peek()) {
      this.#expiry.pop()
      const entry = this.#sessions.get(due.id)
      if (!entry || entry.scheduledAt !== due.at) continue // destroyed, or filed again later
      entry.scheduledAt = Infinity
      if (entry.expiresAt <= now) this.#remove(due.id, entry)
      else this.#reschedule(due.id, entry)
    }
  }

  /** The entry if it exists and has not expired; an expired one is removed on sight. */
  #live(id: string): Entry | undefined {
    const entry = this.#sessions.get(id)
    if (entry && entry.expiresAt <= Date.now()) {
      this.#remove(id, entry)
      return undefined
    }
    return entry
  }

  /** Files the entry in the heap unless it is already filed at or before its expiry. */
  #reschedule(id: string, entry: Entry): void {
    if (entry.scheduledAt <= entry.expiresAt) return // the sweep files it again when that time comes
    entry.scheduledAt = entry.expiresAt
    this.#expiry.push(entry.expiresAt, id)
  }

  #remove(id: string, entry: Entry): void {
    this.#sessions.delete(id)
    this.#link(id, entry.userId, undefined)
  }

  #link(id: string, from: string | undefined, to: string | undefined): void {
    if (from === to) return
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
    if (oldest.done) throw new StoreError('MemoryStore: max reached and nothing to evict', { code: 'EFULL' })
    this.#remove(oldest.value, this.#sessions.get(oldest.value)!)
  }
}

function toRecord(entry: Entry): SessionRecord {
  const record: SessionRecord = {
    data: { ...entry.data },
    cookie: { ...entry.cookie },
    createdAt: entry.createdAt,
    expiresAt: entry.expiresAt,
    idleTimeout: entry.idleTimeout,
    version: entry.version,
  }
  if (entry.userId !== undefined) record.userId = entry.userId
  return record
}

/** A binary min-heap of (time, id), earliest first. */
class ExpiryHeap {
  #times: number[] = []
  #ids: string[] = []

  get size(): number {
    return this.#times.length
  }

  peek(): { at: number; id: string } | undefined {
    return this.#times.length === 0 ? undefined : { at: this.#times[0]!, id: this.#ids[0]! }
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
