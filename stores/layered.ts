import type {
  LoadOptions,
  Renewable,
  RenewOptions,
  RenewResult,
  SaveResult,
  SessionChange,
  SessionRecord,
  Store,
} from '../lib/store.js'
import type { FullStore } from '../lib/full-store.js'
import {
  enforcesUserLimit,
  isClearable,
  isClosable,
  isCountable,
  isRenewable,
  isUserIndex,
} from '../lib/store.js'
import {
  META_KEY,
  putHot,
  readEntry,
  metaChange,
  recordOf,
  type HotWrite,
} from './layered-entry.js'
import { HotLayer } from './layered-hot.js'
import { SeenVersions } from './layered-seen.js'
import { served, type HotReader } from './layered-read.js'
import { checkLayeredOptions, type LayeredStoreOptions } from './layered-options.js'
import {
  LifecycleListeners,
  reportsLifecycle,
  type StoreNoticeListener,
} from '../lib/store-notices.js'

/**
 * A marker no save outnumbers: the hot entry of a renewed id always sends its reads to cold,
 * which follows the renewal within its grace and answers null after it.
 */
const RENEWED_MARKER_VERSION = Number.MAX_SAFE_INTEGER
const RENEWED_MARKER: HotWrite = { kind: 'marker', version: RENEWED_MARKER_VERSION }

/**
 * A fast hot store over a durable cold one. Cold is the source of truth: every save is
 * version-checked there, then reaches hot before it is answered.
 *
 * - **Reads** go to hot, one call: the hot store's load moves the idle expiry as it reads, as it
 *   would on its own. On a miss they go to cold and fill hot. Hot serves an entry at most `hotTtl`
 *   after it was filled or saved; the next read asks cold and refills it. Cold learns the idle
 *   expiry (without the read waiting) once hot has run `min(hotTtl, idleTimeout / 2)` ahead of
 *   it, so cold's copy outlives every read by half the idle timeout.
 * - **Writes** go to cold, then to hot by compare-and-set on a version kept in each hot entry, so a
 *   refill that read cold earlier never overwrites them: hot never serves a version older than
 *   one a request was told was saved. A destroy leaves a tombstone in hot for `hotTtl`, so no
 *   refill in flight brings the session back.
 * - **A hot layer that fails** is skipped: calls go to cold alone for `hotRetryAfter` ms, then
 *   hot is tried again. Sessions written meanwhile are marked in hot before it serves again.
 *   No call fails because hot did. (A hot layer that only this process cannot reach may serve
 *   other processes an older version, for at most `hotTtl`.)
 *
 * The per-user index, `count` and `clear` are the cold store's. `close` closes both layers.
 *
 * @example
 * ```ts
 * import { LayeredStore } from 'concord-session/layered'
 * const store = new LayeredStore({
 *   hot: new RedisStore({ client: redis }),
 *   cold: new PostgresStore({ pool }),
 *   hotTtl: 5 * 60_000,
 * })
 * app.use(session(store, { secret: process.env.SESSION_SECRET! }))
 * ```
 */

export class LayeredStore implements FullStore, Renewable {
  readonly #hot: Store
  readonly #cold: Store
  readonly #hotTtl: number
  readonly #hotLayer: HotLayer
  /** The hot entries this process last read or wrote, for a save's compare-and-set. */
  readonly #seen = new SeenVersions()
  /** What a read served from hot reaches. */
  readonly #reader: HotReader
  readonly #notices = new LifecycleListeners()

  constructor(options: LayeredStoreOptions) {
    const { hot, cold, hotTtl, hotRetryAfter } = checkLayeredOptions(options)
    this.#hot = hot
    this.#cold = cold
    // Renewal happens in cold: over a cold store without it, this store has none either, so
    // isRenewable() says so and session({ renew }) refuses it at setup.
    if (!isRenewable(cold)) Object.defineProperty(this, 'renew', { value: undefined })
    this.#hotTtl = hotTtl
    this.#hotLayer = new HotLayer(hot, hotTtl, hotRetryAfter)
    this.#reader = {
      hot,
      cold,
      hotTtl,
      seen: this.#seen,
      failed: (what, err) => this.#hotFailed(what, err),
      ended: (id, userId) => this.#endedAt(id, userId),
    }
  }

  /**
   * `maxSessionsPerUser` works when the cold store enforces it: cold decides, and the sessions
   * it evicts are marked dead in hot as a destroy would mark them.
   */
  get enforcesUserLimit(): boolean {
    return enforcesUserLimit(this.#cold)
  }

  /** Its sessions live in this process only when the cold store's do. */
  get inProcess(): boolean {
    return (this.#cold as { inProcess?: boolean }).inProcess === true
  }

  /**
   * One call to hot for a read it serves, without an async frame of its own (a read is on every
   * request); cold for the rest.
   */
  load(id: string, options: LoadOptions = {}): Promise<SessionRecord | null> {
    if (!this.#hotLayer.ready()) return this.#loadSlow(id, options)
    const { touchAt, absoluteTimeout, touchAfter } = options
    // The hot store touches its own entry as it reads it. The absolute timeout is applied here,
    // against the session's own creation time, so hot never sees it.
    const hotOptions =
      absoluteTimeout === undefined && touchAfter === undefined
        ? options
        : touchAt === undefined
          ? undefined
          : { touchAt }
    let loading: Promise<SessionRecord | null>
    try {
      loading = this.#hot.load(id, hotOptions)
    } catch (err) {
      loading = Promise.reject(err)
    }
    return loading.then(
      (raw) => {
        try {
          return this.#fromHot(id, raw, options)
        } catch (err) {
          return this.#hotLoadFailed(id, options, err)
        }
      },
      (err: unknown) => this.#hotLoadFailed(id, options, err),
    )
  }

  #hotLoadFailed(id: string, options: LoadOptions, err: unknown): Promise<SessionRecord | null> {
    this.#hotFailed('load', err)
    return this.#fromCold(id, options, null)
  }

  /** A load while hot is skipped or has writes to catch up on: cold, or hot once it is usable. */
  async #loadSlow(id: string, options: LoadOptions): Promise<SessionRecord | null> {
    if (!(await this.#hotUsable())) return this.#fromCold(id, options, null)
    try {
      const { touchAt } = options
      const raw = await this.#hot.load(id, touchAt === undefined ? undefined : { touchAt })
      return this.#fromHot(id, raw, options)
    } catch (err) {
      return this.#hotLoadFailed(id, options, err)
    }
  }

  /** Serves a live hot entry; anything else goes to cold, replacing `raw` by compare-and-set. */
  #fromHot(
    id: string,
    raw: SessionRecord | null,
    options: LoadOptions,
  ): SessionRecord | null | Promise<SessionRecord | null> {
    const known = this.#seen.get(id)
    const entry = readEntry(raw, known)
    if (entry?.meta.dead) return null
    const now = Date.now()
    if (entry && !entry.meta.marker && (entry.meta.h ?? 0) > now)
      return served(this.#reader, id, entry, options, now, known)
    return this.#fromCold(id, options, raw)
  }

  /** Reads cold and fills hot. `held` is what hot holds that could not be served. */
  async #fromCold(
    id: string,
    options: LoadOptions,
    held: SessionRecord | null,
  ): Promise<SessionRecord | null> {
    const record = await this.#cold.load(id, options)
    // A renewed id is never filled: its hot entry stays the marker that sends reads to cold.
    if (record && !record.renewedTo && (await this.#hotUsable())) {
      const fill: HotWrite = { kind: 'session', record }
      const written = await putHot(
        this.#hot,
        id,
        fill,
        this.#hotTtl,
        Date.now(),
        undefined,
        held,
      ).catch((err: unknown) => this.#hotFailed('fill', err))
      if (written) this.#seen.remember(id, written)
    }
    return record
  }

  async save(id: string, change: SessionChange): Promise<SaveResult> {
    if (META_KEY in change.set)
      throw new TypeError(`LayeredStore: the session key ${JSON.stringify(META_KEY)} is reserved`)
    const result = await this.#cold.save(id, change)
    if (result.ok) {
      const write: HotWrite =
        change.expectedVersion === null
          ? { kind: 'session', record: recordOf(change, result.version) }
          : { kind: 'change', change, version: result.version }
      for (const evicted of result.evicted ?? []) await this.#toHot(evicted, { kind: 'dead' })
      await this.#toHot(result.renewedTo ?? id, write)
    }
    return result
  }

  async touch(id: string, expiresAt: number): Promise<void> {
    await this.#cold.touch(id, expiresAt)
    if (!(await this.#hotUsable())) return
    try {
      let entry = readEntry(await this.#hot.load(id))
      if (entry?.meta.marker && entry.meta.v === RENEWED_MARKER_VERSION) {
        // A renewed id: cold touched the session it forwards to; so must hot.
        const renewedTo = (await this.#cold.load(id))?.renewedTo
        if (renewedTo === undefined) return
        id = renewedTo
        entry = readEntry(await this.#hot.load(id))
      }
      if (!entry || entry.meta.dead || entry.meta.marker) return
      // If a save beats this, it carries its own expiry, so the result does not matter.
      await this.#hot.save(id, metaChange(entry.raw, { ...entry.meta, k: expiresAt }, expiresAt))
    } catch (err) {
      this.#hotFailed('touch', err)
    }
  }

  async destroy(id: string): Promise<void> {
    // An id within the grace of a renewal destroys the session it was renewed to, hot too.
    const renewedTo = isRenewable(this.#cold) ? (await this.#cold.load(id))?.renewedTo : undefined
    await this.#cold.destroy(id)
    this.#seen.forget(id)
    await this.#toHot(id, { kind: 'dead' })
    if (renewedTo !== undefined) await this.#toHot(renewedTo, { kind: 'dead' })
  }

  /**
   * Renews in cold, the source of truth (so the cold store must be Renewable), then marks the
   * old id in hot so its reads go to cold: through the grace window there, and null after.
   */
  async renew(oldId: string, newId: string, options: RenewOptions): Promise<RenewResult> {
    if (!isRenewable(this.#cold))
      throw new TypeError(
        'LayeredStore: the cold store cannot renew ids; use a cold store with renew() ' +
          '(MemoryStore, PostgresStore) or drop the renew option',
      )
    const result = await this.#cold.renew(oldId, newId, options)
    if (result.ok) await this.#toHot(oldId, RENEWED_MARKER)
    return result
  }

  async listByUser(userId: string): Promise<string[]> {
    return isUserIndex(this.#cold) ? this.#cold.listByUser(userId) : []
  }

  /**
   * Destroys each of the user's sessions through both layers; a login after the call began stays.
   */
  async destroyByUser(userId: string): Promise<number> {
    const ids = await this.listByUser(userId)
    for (const id of ids) await this.destroy(id)
    this.#notices.signedOut(userId, ids.length)
    return ids.length
  }

  /**
   * Reports `destroyByUser` calls, and the expiries the cold store reports (it is the source of
   * truth; the hot layer's own evictions are not expiries). With a cold store that reports
   * nothing, only sign-outs are reported.
   *
   * @example
   * ```ts
   * const stop = store.onLifecycle((notice) => console.log(notice.type))
   * ```
   */
  onLifecycle(listener: StoreNoticeListener): () => void {
    const remove = this.#notices.add(listener)
    const cold = this.#cold
    const stopCold = reportsLifecycle(cold)
      ? cold.onLifecycle((notice) => notice.type === 'expired' && listener(notice))
      : undefined
    return () => {
      remove()
      stopCold?.()
    }
  }

  async count(): Promise<number> {
    if (!isCountable(this.#cold))
      throw new TypeError('LayeredStore: the cold store cannot count its sessions')
    return this.#cold.count()
  }

  async clear(): Promise<void> {
    if (isClearable(this.#cold)) await this.#cold.clear()
    if (isClearable(this.#hot)) await this.#hot.clear()
  }

  async close(): Promise<void> {
    await Promise.all([closeIfClosable(this.#hot), closeIfClosable(this.#cold)])
  }

  /** Destroys a session a read found past its absolute timeout: gone for good, as in cold. */
  async #endedAt(id: string, userId: string | undefined): Promise<null> {
    await this.destroy(id)
    this.#notices.expired(id, 'load', userId)
    return null
  }

  /** Writes to hot, or remembers what hot must learn when it is back. */
  async #toHot(id: string, write: HotWrite): Promise<void> {
    const seen = write.kind === 'change' ? this.#seen.get(id) : undefined
    const written = await this.#hotLayer.write(id, write, seen)
    if (written) this.#seen.remember(id, written)
    else this.#seen.forget(id)
  }

  /** Hot is usable unless it failed within hotRetryAfter, and once what it missed is repaired. */
  #hotUsable(): Promise<boolean> {
    return this.#hotLayer.usable()
  }

  #hotFailed(what: string, err: unknown): void {
    this.#hotLayer.failed(what, err)
  }
}

async function closeIfClosable(store: Store): Promise<void> {
  if (isClosable(store)) await store.close()
}
