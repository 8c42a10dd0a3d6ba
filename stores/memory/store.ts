import {
  StoreError,
  type LoadOptions,
  type LoadsNow,
  type SavesNow,
  type Renewable,
  type RenewOptions,
  type RenewResult,
  type SaveResult,
  type SessionChange,
  type SessionRecord,
} from '../../lib/store.js'
import type { FullStore } from '../../lib/full-store.js'
import { applyChange, withOwner } from '../../lib/session-data.js'
import { planUserLimit } from '../../lib/user-limit.js'
import { warnInProduction } from '../../lib/production-warning.js'
import { LifecycleListeners, type StoreNoticeListener } from '../../lib/store-notices.js'
import {
  dropExpiredKeys,
  Entry,
  KeyLists,
  NO_COOKIE,
  hasKeys,
  pack,
  pastDeadline,
  repack,
  unpack,
} from './entry.js'
import { ExpiryHeap } from './expiry-heap.js'
import { memoryStoreSettings, rejectUnknownMemoryOptions } from './options.js'
import type { MemoryStoreOptions } from './options.js'

export type { MemoryStoreOptions } from './options.js'

/** An old id forwarding to its renewed session until `until` (epoch ms). */
interface Alias {
  to: string
  until: number
}

/** Renewals followed in a row at most (each within its own grace window). */
const MAX_HOPS = 8

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
export class MemoryStore implements FullStore, Renewable, LoadsNow, SavesNow {
  /** `maxSessionsPerUser` is enforced in the same tick as the save, so it is atomic. */
  readonly enforcesUserLimit = true
  readonly inProcess = true // sessions live in this process only (`InProcess`, at-rest-notes.ts)
  readonly #sessions = new Map<string, Entry>()
  readonly #aliases = new Map<string, Alias>() // renewed ids within their grace window
  readonly #owners = new Map<string, string>() // the owner of each session that has one
  readonly #byUser = new Map<string, Set<string>>()
  readonly #base = Date.now() // epoch ms that entry times count from
  readonly #expiry = new ExpiryHeap()
  readonly #keyLists = new KeyLists()
  readonly #max: number
  readonly #timer: NodeJS.Timeout
  readonly #notices = new LifecycleListeners()

  constructor(options: MemoryStoreOptions = {}) {
    rejectUnknownMemoryOptions(options)
    warnInProduction('MemoryStore')
    const { max, sweepInterval } = memoryStoreSettings(options)
    this.#max = max
    this.#timer = setInterval(() => this.sweep(), sweepInterval)
    this.#timer.unref()
    // A subclass overriding load() or save() is called through it: the shortcuts would go around.
    if (this.load !== MemoryStore.prototype.load) Object.defineProperty(this, 'loadNow', {})
    if (this.save !== MemoryStore.prototype.save) Object.defineProperty(this, 'saveNow', {})
  }

  async load(asked: string, options?: LoadOptions): Promise<SessionRecord | null> {
    return this.#read(asked, options)
  }

  /** `load` in this tick: the middleware opens the session without a promise. */
  loadNow(asked: string, options?: LoadOptions): SessionRecord | null {
    return this.#read(asked, options)
  }

  #read(asked: string, options: LoadOptions = {}): SessionRecord | null {
    const id = this.#resolve(asked)
    if (id === undefined) return null
    const entry = this.#live(id)
    if (!entry) return null
    if (entry.keyExpires !== undefined) dropExpiredKeys(entry, Date.now(), this.#keyLists)
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
    const record = this.#toRecord(id, entry)
    if (id !== asked) record.renewedTo = id
    return record
  }

  async save(asked: string, change: SessionChange): Promise<SaveResult> {
    return this.#write(asked, change)
  }

  /** `save` in this tick: the middleware ends the response without a promise. */
  saveNow(asked: string, change: SessionChange): SaveResult {
    return this.#write(asked, change)
  }

  #write(asked: string, change: SessionChange): SaveResult {
    // Checked in the same tick as the write below: nothing can land after the deadline.
    if (change.deadline !== undefined && Date.now() >= change.deadline) throw pastDeadline(asked)
    const id = this.#resolve(asked)
    // An old id past its grace is dead: never written again.
    if (id === undefined) return { ok: false, reason: 'gone' }
    const entry = this.#live(id)
    const renewed = id === asked ? undefined : id
    if (entry?.keyExpires !== undefined) dropExpiredKeys(entry, Date.now(), this.#keyLists)
    if (change.expectedVersion === null) {
      if (entry) return { ok: false, reason: 'conflict', current: this.#toRecord(id, entry) }
    } else {
      if (!entry) return { ok: false, reason: 'gone' }
      if (entry.version !== change.expectedVersion)
        return { ok: false, reason: 'conflict', current: this.#toRecord(id, entry) }
    }

    const userId = change.userId ?? undefined
    let evicted: string[] | undefined
    if (change.userLimit && userId !== undefined && this.#owners.get(id) !== userId) {
      const others = this.#othersOf(userId, id)
      const plan = planUserLimit(change.userLimit, others)
      if (plan === 'refuse') return { ok: false, reason: 'userLimit' }
      for (const other of plan) this.#remove(other)
      if (plan.length > 0) evicted = plan
    }
    const cookie = hasKeys(change.cookie) ? { ...change.cookie } : NO_COOKIE
    const keyExpires =
      change.keyExpires !== undefined && hasKeys(change.keyExpires)
        ? { ...change.keyExpires }
        : undefined
    if (entry) {
      // Most saves change values of keys the session has: written into the packed text as it is.
      if (change.unset.length > 0 || !repack(entry, change.set))
        pack(entry, applyChange(unpack(entry), change), this.#keyLists)
      entry.cookie = cookie
      entry.keyExpires = keyExpires
      entry.idleTimeout = change.idleTimeout
      entry.version++
      this.#link(id, this.#owners.get(id), userId)
      this.#setExpiry(id, entry, change.expiresAt)
      const result: SaveResult = { ok: true, version: entry.version }
      if (evicted) result.evicted = evicted
      if (renewed !== undefined) result.renewedTo = renewed
      return result
    }
    if (this.#sessions.size >= this.#max) this.#evictLeastRecentlyUsed()
    const base = this.#base
    const created = new Entry(
      undefined,
      '',
      cookie,
      change.createdAt - base,
      change.expiresAt - base,
      change.idleTimeout,
      1,
      -1,
      keyExpires,
    )
    pack(created, applyChange(undefined, change), this.#keyLists)
    this.#link(id, undefined, userId)
    this.#sessions.set(id, created)
    this.#expiry.push(change.expiresAt, id)
    return evicted ? { ok: true, version: 1, evicted } : { ok: true, version: 1 }
  }

  async touch(asked: string, expiresAt: number): Promise<void> {
    const id = this.#resolve(asked)
    const entry = id === undefined ? undefined : this.#live(id)
    if (!entry) return
    this.#setExpiry(id!, entry, expiresAt)
  }

  async destroy(asked: string): Promise<void> {
    const id = this.#resolve(asked)
    this.#aliases.delete(asked)
    if (id !== undefined && this.#sessions.has(id)) this.#remove(id)
  }

  async renew(oldId: string, newId: string, options: RenewOptions): Promise<RenewResult> {
    if (this.#aliases.has(oldId)) {
      const to = this.#resolve(oldId)
      return to === undefined
        ? { ok: false, reason: 'gone' }
        : { ok: false, reason: 'renewed', id: to }
    }
    const entry = this.#live(oldId)
    if (!entry) return { ok: false, reason: 'gone' }
    if (this.#live(newId) || this.#aliases.has(newId)) return { ok: false, reason: 'taken' }
    const owner = this.#owners.get(oldId)
    this.#sessions.delete(oldId)
    this.#link(oldId, owner, undefined)
    entry.renewed = options.now - this.#base
    this.#sessions.set(newId, entry)
    this.#link(newId, undefined, owner)
    const expiresAt = this.#base + entry.expires
    this.#expiry.push(expiresAt, newId)
    this.#aliases.set(oldId, {
      to: newId,
      until: Math.min(options.now + options.graceMs, expiresAt),
    })
    return { ok: true }
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
    this.#aliases.clear()
  }

  async close(): Promise<void> {
    clearInterval(this.#timer)
  }

  /** Removes every session whose expiry has passed. Runs on the timer; callable directly. */
  sweep(now = Date.now()): void {
    for (const [id, alias] of this.#aliases) if (alias.until <= now) this.#aliases.delete(id)
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

  /** The user's live sessions other than `id`, with when each began. */
  #othersOf(userId: string, id: string): { id: string; createdAt: number }[] {
    const others: { id: string; createdAt: number }[] = []
    for (const other of this.#byUser.get(userId) ?? []) {
      const entry = other === id ? undefined : this.#live(other)
      if (entry) others.push({ id: other, createdAt: this.#base + entry.created })
    }
    return others
  }

  /**
   * The id `asked` names now: itself, or the session a renewal moved it to while within its
   * grace. Undefined for an old id past its grace (which is then forgotten).
   */
  #resolve(asked: string): string | undefined {
    let id = asked
    for (let hop = 0; hop < MAX_HOPS; hop++) {
      const alias = this.#aliases.get(id)
      if (alias === undefined) return id
      if (alias.until <= Date.now()) {
        this.#aliases.delete(id)
        return undefined
      }
      id = alias.to
    }
    return undefined
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
        data: unpack(entry),
        cookie: entry.cookie === NO_COOKIE ? {} : { ...entry.cookie },
        createdAt: this.#base + entry.created,
        expiresAt: this.#base + entry.expires,
        idleTimeout: entry.idleTimeout,
        version: entry.version,
      },
      userId,
    )
    if (entry.renewed !== -1) record.renewedAt = this.#base + entry.renewed
    if (entry.keyExpires !== undefined) record.keyExpires = { ...entry.keyExpires }
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

  #markUsed(id: string, entry: Entry): void {
    this.#sessions.delete(id) // a Map keeps insertion order: re-adding it keeps the LRU order
    this.#sessions.set(id, entry)
  }

  #evictLeastRecentlyUsed(): void {
    const oldest = this.#sessions.keys().next()
    if (oldest.done)
      throw new StoreError('MemoryStore: max reached and nothing to evict', { code: 'EFULL' })
    this.#remove(oldest.value)
  }
}
