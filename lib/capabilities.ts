/**
 * Optional store capabilities, each an interface with a type guard (as tower-sessions keeps
 * optional store abilities in traits of their own): listing and signing out a user's sessions,
 * counting, clearing, closing, renewing ids and enforcing a per-user limit. The core asks a store
 * what it can do through these guards; `Store` itself keeps its four methods.
 */
import type { LoadOptions, SaveResult, SessionChange, SessionRecord, Store } from './store.js'

/**
 * A store that indexes sessions by owner (`SessionChange.userId`). Optional: a store has it or
 * not, and {@link isUserIndex} tells which, as a separate trait rather than optional methods.
 *
 * @example
 * ```ts
 * if (isUserIndex(store)) await store.destroyByUser(user.id) // sign out everywhere
 * ```
 */
export interface UserIndex {
  /** Ids of the user's live sessions. */
  listByUser(userId: string): Promise<string[]>
  /** Signs the user out everywhere; resolves to the number of sessions destroyed. */
  destroyByUser(userId: string): Promise<number>
}

/**
 * A store that can count its live sessions.
 *
 * @example
 * ```ts
 * if (isCountable(store)) metrics.gauge('sessions', await store.count())
 * ```
 */
export interface Countable {
  /** Number of live sessions. */
  count(): Promise<number>
}

/**
 * A store that can remove every session it holds (within its prefix, table or directory).
 *
 * @example
 * ```ts
 * afterAll(async () => { if (isClearable(store)) await store.clear() })
 * ```
 */
export interface Clearable {
  clear(): Promise<void>
}

/**
 * A store that holds timers or connections of its own to release at shutdown.
 *
 * @example
 * ```ts
 * process.on('SIGTERM', () => void (isClosable(store) && store.close()))
 * ```
 */
export interface Closable {
  /** Releases timers and connections the store opened itself. */
  close(): Promise<void>
}

/**
 * True when `store` has the per-user index: both {@link UserIndex} methods.
 *
 * @example
 * ```ts
 * const ids = isUserIndex(store) ? await store.listByUser(user.id) : []
 * ```
 */
export function isUserIndex<S extends object>(store: S): store is S & UserIndex {
  return hasMethod(store, 'listByUser') && hasMethod(store, 'destroyByUser')
}

/**
 * True when `store` can count its sessions.
 *
 * @example
 * ```ts
 * if (isCountable(store)) console.log(await store.count())
 * ```
 */
export function isCountable<S extends object>(store: S): store is S & Countable {
  return hasMethod(store, 'count')
}

/**
 * True when `store` can remove every session it holds.
 *
 * @example
 * ```ts
 * if (isClearable(store)) await store.clear()
 * ```
 */
export function isClearable<S extends object>(store: S): store is S & Clearable {
  return hasMethod(store, 'clear')
}

/**
 * True when `store` has resources of its own to release.
 *
 * @example
 * ```ts
 * if (isClosable(store)) await store.close()
 * ```
 */
export function isClosable<S extends object>(store: S): store is S & Closable {
  return hasMethod(store, 'close')
}

/** What {@link Renewable.renew} needs besides the ids. */
export interface RenewOptions {
  /** Epoch ms of the renewal (the app's clock): the new id's `renewedAt`. */
  now: number
  /** How long, in ms, the old id keeps forwarding to the new one. */
  graceMs: number
}

export type RenewResult =
  | { ok: true }
  /** The old id is unknown, expired, destroyed, or past the grace of an earlier renewal. */
  | { ok: false; reason: 'gone' }
  /** Another request renewed the old id first: the session lives under `id` now. */
  | { ok: false; reason: 'renewed'; id: string }
  /** The new id is in use already; nothing changed. */
  | { ok: false; reason: 'taken' }

/**
 * A store that can give a session a new id atomically, keeping its data, version, owner,
 * created time and expiry: the move happens at one instant, before which the session lives
 * under the old id only and after which under the new one. (A store may take several steps, as
 * RedisStore does on a cluster, if only one of them makes the move visible.) The old id then
 * forwards to the new one for `graceMs` (never past the session's own expiry), so requests
 * already in flight with it still load, save, touch and destroy the renewed session; after that
 * the old id is dead: `load` gives `null`, `save` gives `'gone'`, and nothing brings it back.
 *
 * @example
 * ```ts
 * if (isRenewable(store)) await store.renew(oldId, newId, { now: Date.now(), graceMs: 30_000 })
 * ```
 */
export interface Renewable {
  renew(oldId: string, newId: string, options: RenewOptions): Promise<RenewResult>
}

/**
 * True when `store` can renew a session's id with a grace window.
 *
 * @example
 * ```ts
 * if (!isRenewable(store)) throw new Error('this store cannot renew ids')
 * ```
 */
export function isRenewable<S extends object>(store: S): store is S & Renewable {
  return hasMethod(store, 'renew')
}

/**
 * A store that can answer a load in the calling tick, as an in-process store can: the
 * middleware then opens the session without a promise. `load` stays the contract every store
 * keeps; this is a shortcut beside it, with the same meaning.
 *
 * @example
 * ```ts
 * const record = loadsNow(store) ? store.loadNow(id) : await store.load(id)
 * ```
 */
export interface LoadsNow {
  /**
   * What `load(id, options)` would resolve to, answered now; throws where `load` would reject.
   * `undefined` when only `load` can answer this one (the caller then calls `load`, so what
   * this call did must be safe to do again).
   */
  loadNow(id: string, options?: LoadOptions): SessionRecord | null | undefined
}

/**
 * True when `store` can answer a load in the calling tick.
 *
 * @example
 * ```ts
 * loadsNow(new MemoryStore()) // true
 * ```
 */
export function loadsNow<S extends object>(store: S): store is S & LoadsNow {
  return hasMethod(store, 'loadNow')
}

/**
 * A store that can answer a save in the calling tick, as an in-process store can: the middleware
 * then writes a request's changes and ends its response without a promise. `save` stays the
 * contract every store keeps; this is a shortcut beside it, with the same meaning (the version
 * check, the deadline, `'gone'`, conflicts, `userLimit`).
 *
 * @example
 * ```ts
 * const result = (savesNow(store) && store.saveNow(id, change)) || (await store.save(id, change))
 * ```
 */
export interface SavesNow {
  /**
   * What `save(id, change)` would resolve to, answered now; throws where `save` would reject.
   * `undefined` when only `save` can answer this one, and then it has written nothing: the
   * caller calls `save` next.
   */
  saveNow(id: string, change: SessionChange): SaveResult | undefined
}

/**
 * True when `store` can answer a save in the calling tick.
 *
 * @example
 * ```ts
 * savesNow(new MemoryStore()) // true
 * ```
 */
export function savesNow<S extends object>(store: S): store is S & SavesNow {
  return hasMethod(store, 'saveNow')
}

function hasMethod(store: object, name: string): boolean {
  return typeof (store as Record<string, unknown>)[name] === 'function'
}

/**
 * A store that enforces `SessionChange.userLimit` atomically (memory, Redis, file, PostgreSQL,
 * and a layered store whose cold store does). `maxSessionsPerUser` requires one.
 *
 * @example
 * ```ts
 * if (!enforcesUserLimit(store)) throw new TypeError('this store cannot limit sessions per user')
 * ```
 */
export interface UserLimitStore extends Store, UserIndex {
  readonly enforcesUserLimit: true
}

/**
 * Whether `store` enforces `SessionChange.userLimit`.
 *
 * @example
 * ```ts
 * enforcesUserLimit(new MemoryStore()) // true
 * ```
 */
export function enforcesUserLimit(store: Store): store is UserLimitStore {
  return (store as Partial<UserLimitStore>).enforcesUserLimit === true
}
