/**
 * What a store tells the core about sessions that ended without a request asking: expired ones
 * it found (at a load, or while pruning) and users signed out everywhere. A capability: a store
 * that cannot see these simply lacks `onLifecycle`, and the core works as before.
 */
import createDebug from 'debug'
import type { Store } from './store.js'

const debug = createDebug('concord-session:store')

/**
 * One thing a store saw. `id` is the session id as the store was given it: the middleware turns
 * it into the keyed hash before any event leaves the package.
 */
export type StoreNotice =
  | {
      type: 'expired'
      id: string
      /** The owner set with `setUser`, if any. */
      userId?: string
      /** `'load'`: found expired when asked for by id; `'prune'`: removed by a sweep. */
      seenAt: 'load' | 'prune'
      /** `id` is the keyed hash already (the store keeps ids hashed): shown as it is. */
      hashed?: true
    }
  | { type: 'signedOutEverywhere'; userId: string; count: number }

export type StoreNoticeListener = (notice: StoreNotice) => void

/**
 * A store that reports expired sessions and sign-outs everywhere. Memory, file, PostgreSQL,
 * Redis and layered stores implement it; each one's docs page says what it can see.
 *
 * @example
 * ```ts
 * if (reportsLifecycle(store)) {
 *   const stop = store.onLifecycle((notice) => audit.write(notice.type))
 *   // later: stop()
 * }
 * ```
 */
export interface ReportsLifecycle {
  /** Registers a listener; the returned function removes it. */
  onLifecycle(listener: StoreNoticeListener): () => void
}

/**
 * Whether `store` reports expired sessions and sign-outs everywhere.
 *
 * @example
 * ```ts
 * reportsLifecycle(new MemoryStore()) // true
 * ```
 */
export function reportsLifecycle(store: Store): store is Store & ReportsLifecycle {
  return typeof (store as Partial<ReportsLifecycle>).onLifecycle === 'function'
}

/**
 * The listeners of one store. `active` is false while nobody listens, so a store builds no
 * notice then; a listener that throws is logged and never fails the store call.
 *
 * @example
 * ```ts
 * readonly #notices = new LifecycleListeners()
 * onLifecycle(listener) { return this.#notices.add(listener) }
 * if (this.#notices.active) this.#notices.notify({ type: 'expired', id, seenAt: 'prune' })
 * ```
 */
export class LifecycleListeners {
  #listeners: StoreNoticeListener[] = []

  get active(): boolean {
    return this.#listeners.length > 0
  }

  add(listener: StoreNoticeListener): () => void {
    if (typeof listener !== 'function')
      throw new TypeError(
        `onLifecycle(listener): listener must be a function, got ${typeof listener}`,
      )
    this.#listeners = [...this.#listeners, listener]
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener)
    }
  }

  /** Reports an expired session, if anyone listens; `userId` is its owner, if any. */
  expired(id: string, seenAt: 'load' | 'prune', userId?: string | null): void {
    if (!this.active) return
    this.notify(
      userId === undefined || userId === null
        ? { type: 'expired', id, seenAt }
        : { type: 'expired', id, seenAt, userId },
    )
  }

  /** Reports a `destroyByUser` call, if anyone listens. */
  signedOut(userId: string, count: number): void {
    if (this.active) this.notify({ type: 'signedOutEverywhere', userId, count })
  }

  notify(notice: StoreNotice): void {
    for (const listener of this.#listeners) {
      try {
        listener(notice)
      } catch (err) {
        debug('a lifecycle listener threw on %s: %O', notice.type, err)
      }
    }
  }
}
