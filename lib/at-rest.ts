/**
 * Protection at rest, at the boundary between the core and the store: the store keys each
 * session by the keyed hash of its id (so a store dump, a Redis MONITOR or a directory listing
 * cannot be replayed as cookies), and, with `encrypt`, holds each value encrypted. Stores stay
 * unaware: they are given stored ids and sealed values, as any others.
 *
 * A session stored under its raw id (written before hashing was on, or by connect-redis,
 * connect-pg-simple or an express-session store) or under the hash of an older secret is moved
 * under its hashed id by the first load that finds it, so every save goes to the hashed id and
 * the version check of the store alone keeps concurrent requests exact.
 */
import { ValueCipher } from './at-rest-cipher.js'
import type { AtRestConfig } from './at-rest-options.js'
import { hashSessionId } from './id-hash.js'
import type { IdHashCache } from './id-hash-cache.js'
import { reportsLifecycle, type StoreNoticeListener } from './store-notices.js'
import {
  enforcesUserLimit,
  isClearable,
  isClosable,
  isCountable,
  isRenewable,
  isUserIndex,
  type LoadOptions,
  type RenewOptions,
  type RenewResult,
  loadsNow,
  type LoadsNow,
  savesNow,
  type SavesNow,
  type SaveResult,
  type SessionChange,
  type SessionRecord,
  type Store,
} from './store.js'
import { BoundedMap, renewedIn } from './at-rest-map.js'
import { followRenewalNotes, isInProcess, leaveRenewalNote } from './at-rest-notes.js'

/**
 * Written into a session moving to its hashed id, before the move: a stale save to the old
 * place then conflicts, and a move cut short is finished by the next load that finds it.
 */
export const MOVED_KEY = 'concord-session:moved'

/** A keyed hash as `hashSessionId` writes it. */
const HASH_SHAPE = /^[A-Za-z0-9_-]{43}$/

/**
 * The store the core talks to: `inner` keyed by hashed ids and holding sealed values.
 *
 * @example
 * ```ts
 * const store = new AtRestStore(new MemoryStore(), config, new IdHashCache(config.idHashKey))
 * await store.load(req.session.id) // loads the session stored under its keyed hash
 * ```
 */
export class AtRestStore implements Store {
  readonly #cipher: ValueCipher | undefined
  /** Values the last load found under an older key (or in clear), per stored id and version. */
  readonly #stale = new BoundedMap<string, { version: number; texts: Record<string, string> }>()
  /** Ids renewed in the inner store, by their hash: to give the core the id a renewal moved to. */
  readonly #renewed: BoundedMap<string, string>

  constructor(
    readonly inner: Store,
    readonly config: AtRestConfig,
    readonly hashes: IdHashCache,
  ) {
    this.#cipher = config.encryptKeys && new ValueCipher(config.encryptKeys)
    this.#renewed = renewedIn(inner)
    // Capabilities the inner store lacks stay absent, so the core's checks see the same store.
    const self = this as unknown as Record<string, unknown>
    if (!loadsNow(inner)) self.loadNow = undefined
    if (!savesNow(inner) || !isInProcess(inner)) self.saveNow = undefined
    if (!isRenewable(inner)) self.renew = undefined
    if (!isUserIndex(inner)) self.listByUser = self.destroyByUser = undefined
    if (!isCountable(inner)) self.count = undefined
    if (!isClearable(inner)) self.clear = undefined
    if (!isClosable(inner)) self.close = undefined
    if (!reportsLifecycle(inner)) self.onLifecycle = undefined
    if (enforcesUserLimit(inner)) self.enforcesUserLimit = true
  }

  /** The id `inner` keeps the session `id` under. */
  storedId(id: string): string {
    return this.config.hashIds ? this.hashes.get(id) : id
  }

  async load(id: string, options?: LoadOptions): Promise<SessionRecord | null> {
    const key = this.storedId(id)
    const record = await this.inner.load(key, options)
    if (record) {
      const opened = this.#open(key, record)
      if (record.renewedTo === undefined || opened.renewedTo !== undefined) return opened
      const to = await this.#renewedElsewhere(id, record.renewedTo)
      return to === undefined ? opened : { ...opened, renewedTo: to }
    }
    if (!this.config.hashIds) return null
    for (const place of this.#olderPlaces(id)) {
      const found = await this.inner.load(place)
      if (found) return found.renewedTo ? null : this.#move(place, key, found, options)
    }
    return null
  }

  /**
   * `load` in this tick, when the inner store answers so and the session is where a load
   * finds it. `undefined` for the rest, which takes `load`: moving a session stored under an
   * older key, or reading the note of a renewal made by another process.
   */
  loadNow(id: string, options?: LoadOptions): SessionRecord | null | undefined {
    const inner = this.inner as Store & LoadsNow
    const key = this.storedId(id)
    const record = inner.loadNow(key, options)
    if (record) {
      const opened = this.#open(key, record)
      return record.renewedTo === undefined || opened.renewedTo !== undefined ? opened : undefined
    }
    if (record === undefined || !this.config.hashIds) return record
    for (const place of this.#olderPlaces(id)) {
      const found = inner.loadNow(place)
      if (found !== null) return found?.renewedTo ? null : undefined
    }
    return null
  }

  async save(id: string, change: SessionChange): Promise<SaveResult> {
    const key = this.storedId(id)
    const result = await this.inner.save(key, this.#sealed(key, change, true))
    const to = result.ok ? result.renewedTo : undefined
    const renewedTo = to && (this.#renewed.get(to) ?? (await this.#renewedElsewhere(id, to)))
    return this.#saved(key, result, renewedTo)
  }

  /**
   * `save` in this tick. Offered only over an in-process store, which no other process renews
   * in: a renewal it reports was made here, so no note has to be read.
   */
  saveNow(id: string, change: SessionChange): SaveResult | undefined {
    const key = this.storedId(id)
    const result = (this.inner as Store & SavesNow).saveNow(key, this.#sealed(key, change, false))
    if (result === undefined) return undefined
    if (this.#cipher) this.#stale.take(key) // written: its stale values are sealed anew
    const to = result.ok ? result.renewedTo : undefined
    return this.#saved(key, result, to && this.#renewed.get(to))
  }

  /** The change as `inner` writes it: values sealed, and with them the stale ones (`take`n). */
  #sealed(key: string, change: SessionChange, take: boolean): SessionChange {
    if (!this.#cipher) return change
    let { set } = change
    const stale = take ? this.#stale.take(key) : this.#stale.get(key)
    if (stale && stale.version === change.expectedVersion) {
      // Every value under an older key is written anew, not only the changed ones.
      const again = { ...stale.texts }
      for (const name of change.unset) delete again[name]
      set = { ...again, ...set }
    }
    return { ...change, set: this.#seal(key, set) }
  }

  /** The inner store's answer with stored ids turned back into the ids the core knows. */
  #saved(key: string, result: SaveResult, renewedTo: string | undefined): SaveResult {
    if (result.ok) {
      if (result.evicted === undefined && result.renewedTo === undefined) return result
      const evicted = result.evicted?.flatMap((stored) => this.#original(stored) ?? [])
      return {
        ok: true,
        version: result.version,
        ...(evicted && evicted.length > 0 ? { evicted } : {}),
        ...(renewedTo ? { renewedTo } : {}),
      }
    }
    if (result.reason === 'conflict')
      return { ok: false, reason: 'conflict', current: this.#open(key, result.current) }
    return result
  }

  touch(id: string, expiresAt: number): Promise<void> {
    return this.inner.touch(this.storedId(id), expiresAt)
  }

  /**
   * Destroys the session wherever it may be stored: older places first, then its hashed id,
   * so a move racing this destroy either finds its old place gone or is destroyed after it.
   */
  async destroy(id: string): Promise<void> {
    if (this.config.hashIds)
      await Promise.all(this.#olderPlaces(id).map((place) => this.inner.destroy(place)))
    await this.inner.destroy(this.storedId(id))
  }

  async renew(oldId: string, newId: string, options: RenewOptions): Promise<RenewResult> {
    if (!isRenewable(this.inner)) return { ok: false, reason: 'gone' }
    const to = this.storedId(newId)
    this.#renewed.set(to, newId)
    const result = await this.inner.renew(this.storedId(oldId), to, options)
    if (result.ok) {
      if (this.config.hashIds && !isInProcess(this.inner))
        await leaveRenewalNote(this.inner, this.config.idHashKey, oldId, newId, options)
      return result
    }
    if (result.reason !== 'renewed') return result
    // Renewed by another process: its note gives the new id; without it, this request goes
    // on with the old id, which the store forwards through the grace window.
    const id = this.#renewed.get(result.id) ?? (await this.#renewedElsewhere(oldId, result.id))
    return { ok: false, reason: 'renewed', id: id ?? oldId }
  }

  /** The id another process renewed `oldId` to, from the notes it left, if any. */
  #renewedElsewhere(oldId: string, storedTo: string): Promise<string | undefined> {
    if (!this.config.hashIds) return Promise.resolve(undefined)
    const { inner, config, hashes } = this
    return followRenewalNotes(inner, config.idHashKey, hashes, this.#renewed, oldId, storedTo)
  }

  /** Stored ids (keyed hashes) of the user's sessions: `store.destroy(storedId)` ends one. */
  listByUser(userId: string): Promise<string[]> {
    return (this.inner as Store & { listByUser(u: string): Promise<string[]> }).listByUser(userId)
  }

  destroyByUser(userId: string): Promise<number> {
    return (this.inner as Store & { destroyByUser(u: string): Promise<number> }).destroyByUser(
      userId,
    )
  }

  count(): Promise<number> {
    return (this.inner as Store & { count(): Promise<number> }).count()
  }

  clear(): Promise<void> {
    return (this.inner as Store & { clear(): Promise<void> }).clear()
  }

  close(): Promise<void> {
    return (this.inner as Store & { close(): Promise<void> }).close()
  }

  /**
   * The store's notices, with ids as events show them. A stored keyed hash is passed on as
   * it is (events show that same hash); a raw id, of a session never moved, is hashed.
   */
  onLifecycle(listener: StoreNoticeListener): () => void {
    const inner = this.inner as Store & { onLifecycle(l: StoreNoticeListener): () => void }
    return inner.onLifecycle((notice) => {
      if (notice.type !== 'expired') return listener(notice)
      const hashed = this.config.hashIds && HASH_SHAPE.test(notice.id)
      listener({ ...notice, id: hashed ? notice.id : this.hashes.get(notice.id), hashed: true })
    })
  }

  /** `enforcesUserLimit` is set in the constructor when the inner store has it. */
  declare readonly enforcesUserLimit?: true

  /** Where the session `id` may be stored from before: older keys' hashes, then the raw id. */
  #olderPlaces(id: string): string[] {
    return [...this.config.olderIdHashKeys.map((key) => hashSessionId(id, key)), id]
  }

  #original(stored: string): string | undefined {
    return this.config.hashIds ? this.hashes.original(stored) : stored
  }

  /**
   * Moves the session found at `place` to `key`: marks the old place (a versioned save, so a
   * concurrent save there conflicts), creates the session under `key`, then removes the old
   * place, unless a destroy removed it meanwhile: then the new copy goes too. The moved
   * session keeps its data, owner, cookie settings and expiry; its version starts anew, and
   * no request holds a version of it from the old place, since every load comes through here.
   */
  async #move(
    place: string,
    key: string,
    found: SessionRecord,
    options: LoadOptions | undefined,
  ): Promise<SessionRecord | null> {
    if (found.data[MOVED_KEY] === undefined) {
      const result = await this.inner.save(place, {
        set: { [MOVED_KEY]: JSON.stringify(key) },
        unset: [],
        cookie: found.cookie,
        createdAt: found.createdAt,
        expiresAt: found.expiresAt,
        idleTimeout: found.idleTimeout,
        userId: found.userId ?? null,
        ...(found.keyExpires ? { keyExpires: found.keyExpires } : {}),
        expectedVersion: found.version,
      })
      if (!result.ok) {
        // Saved or moved by another request meanwhile: look again from the start.
        if (result.reason === 'conflict') return this.#loadMoved(key, place, options)
        return this.#loadHashed(key, options)
      }
    }
    const marked = found
    const { [MOVED_KEY]: _, ...data } = marked.data
    const created = await this.inner.save(key, {
      set: this.#cipher ? this.#seal(key, this.#openData(place, data)) : data,
      unset: [],
      cookie: marked.cookie,
      createdAt: marked.createdAt,
      expiresAt: marked.expiresAt,
      idleTimeout: marked.idleTimeout,
      userId: marked.userId ?? null,
      ...(marked.keyExpires ? { keyExpires: marked.keyExpires } : {}),
      expectedVersion: null,
    })
    if (created.ok) {
      if ((await this.inner.load(place)) === null) {
        await this.inner.destroy(key) // destroyed while it moved: it stays destroyed
        return null
      }
      await this.inner.destroy(place)
    }
    return this.#loadHashed(key, options)
  }

  /** After a conflict marking the old place: finish that move, or start over. */
  async #loadMoved(
    key: string,
    place: string,
    options: LoadOptions | undefined,
  ): Promise<SessionRecord | null> {
    const hashed = await this.#loadHashed(key, options)
    if (hashed) return hashed
    const found = await this.inner.load(place)
    return found ? this.#move(place, key, found, options) : null
  }

  async #loadHashed(key: string, options: LoadOptions | undefined) {
    const record = await this.inner.load(key, options)
    return record && this.#open(key, record)
  }

  /** The record as the core reads it: values decrypted, a renewal's id turned back. */
  #open(key: string, record: SessionRecord): SessionRecord {
    let opened = record
    if (this.#cipher) {
      const stale: Record<string, string> = {}
      let anyStale = false
      const data: Record<string, string> = {}
      for (const name of Object.keys(record.data)) {
        const { text, stale: old } = this.#cipher.open(
          key,
          name,
          record.data[name]!,
          this.#shown(key),
        )
        data[name] = text
        if (old) {
          stale[name] = text
          anyStale = true
        }
      }
      if (anyStale) this.#stale.set(key, { version: record.version, texts: stale })
      opened = { ...record, data }
    }
    if (record.renewedTo !== undefined) {
      const id = this.config.hashIds ? this.#renewed.get(record.renewedTo) : record.renewedTo
      // Renewed elsewhere: the old id still reaches the session through the grace window.
      if (id !== undefined) opened = { ...opened, renewedTo: id }
      else {
        const { renewedTo: _, ...rest } = opened
        opened = rest
      }
    }
    return opened
  }

  #openData(place: string, data: Record<string, string>): Record<string, string> {
    const open: Record<string, string> = {}
    for (const name of Object.keys(data))
      open[name] = this.#cipher!.open(place, name, data[name]!, this.#shown(place)).text
    return open
  }

  #seal(key: string, set: Record<string, string>): Record<string, string> {
    const sealed: Record<string, string> = {}
    for (const name of Object.keys(set)) sealed[name] = this.#cipher!.seal(key, name, set[name]!)
    return sealed
  }

  /** How errors name a session: by its keyed hash, never by an id that could be replayed. */
  #shown(stored: string): string {
    return this.config.hashIds && HASH_SHAPE.test(stored) ? stored : this.hashes.get(stored)
  }
}
