/**
 * Keeps a failing store from holding requests hostage.
 *
 * The bound on a save is its deadline, which the store enforces where it writes: only the store
 * can promise that a save it refused never lands later, so the guard never answers "not saved"
 * on its own while a store call is still out.
 *
 * - **Fail fast, recover calmly.** Once a call has failed as an outage would (timed out,
 *   refused, unreachable), the store counts as down. While it is down, work that was already
 *   queued fails at once, and only one call at a time goes through as a probe; the first one
 *   that succeeds marks the store up again. So an outage costs each request at most one
 *   timeout, and recovery is not met by a storm of retries.
 */
import {
  StoreError,
  type LoadOptions,
  type LoadsNow,
  type SaveResult,
  type SavesNow,
  type SessionChange,
  type SessionRecord,
  type Store,
} from './store.js'
import { toStoreError } from './store-errors.js'

/** Errors that say something about the session, not about the store being reachable. */
const NOT_OUTAGES = new Set(['ECONFLICT', 'ECORRUPT', 'EFULL'])

export class StoreGuard {
  #down = false
  /** Epoch ms the probe in flight started, or 0 when none is. */
  #probeStartedAt = 0

  constructor(
    /** ms a store call may take before the store refuses it (the save deadline). */
    readonly saveTimeout: number,
  ) {}

  get down(): boolean {
    return this.#down
  }

  /**
   * Runs one store call. `queued` marks work that waited behind another save of its session:
   * while the store is down it fails at once instead of becoming a probe.
   */
  call<T>(run: () => Promise<T>, what: string, id: string, queued = false): Promise<T> {
    if (this.#down) return this.#callWhileDown(run, what, id, queued)
    // While the store is up: one promise, no async frame, on every store call.
    let running: Promise<T>
    try {
      // A native promise passes through as it is; anything else a store returns is adopted.
      running = Promise.resolve(run())
    } catch (err) {
      return Promise.reject(this.#failed(err, what, id))
    }
    return running.then(this.#up as (result: T) => T, (err: unknown) => {
      throw this.#failed(err, what, id)
    })
  }

  /**
   * A load the store answers in this tick (see {@link LoadsNow}), guarded as {@link call}
   * guards one: a failure counts against the store. `undefined` while the store is down, so
   * the caller goes through `call` and its one probe at a time, and when the store can only
   * answer through `load`.
   */
  loadNow(
    store: Store & LoadsNow,
    id: string,
    options: LoadOptions,
  ): SessionRecord | null | undefined {
    if (this.#down) return undefined
    try {
      return store.loadNow(id, options)
    } catch (err) {
      throw this.#failed(err, 'load', id)
    }
  }

  /**
   * A save the store answers in this tick (see {@link SavesNow}), guarded as {@link call}
   * guards one. `undefined` while the store is down (the caller queues the save, which then
   * goes through `call`), and when the store can only answer through `save`.
   */
  saveNow(store: Store & SavesNow, id: string, change: SessionChange): SaveResult | undefined {
    if (this.#down) return undefined
    try {
      return store.saveNow(id, change)
    } catch (err) {
      throw this.#failed(err, 'save', id)
    }
  }

  /** Marks the store up; passes the result through. Bound once, not per call. */
  readonly #up = <T>(result: T): T => {
    this.#down = false
    return result
  }

  /** Counts a failure against the store unless it is about the session; the error to throw. */
  #failed(err: unknown, what: string, id: string): StoreError {
    if (!(err instanceof StoreError && NOT_OUTAGES.has(err.code))) this.#down = true
    return asStoreError(err, what, id)
  }

  async #callWhileDown<T>(
    run: () => Promise<T>,
    what: string,
    id: string,
    queued: boolean,
  ): Promise<T> {
    const now = Date.now()
    // A probe that has not answered within a save's bound no longer blocks the next one.
    const probing = this.#probeStartedAt !== 0 && now - this.#probeStartedAt < 2 * this.saveTimeout
    if (queued || probing) {
      throw new StoreError(
        'session store is unavailable (a recent call failed); ' +
          `${what} of session ${id} was not attempted`,
        { code: 'EUNAVAILABLE' },
      )
    }
    this.#probeStartedAt = now
    try {
      const result = await run()
      this.#down = false
      return result
    } catch (err) {
      throw this.#failed(err, what, id)
    } finally {
      this.#probeStartedAt = 0
    }
  }
}

/** Calls the store, turning anything but a StoreError into one: stores fail closed with 503. */
export async function callStore<T>(call: () => Promise<T>, what: string, id: string): Promise<T> {
  try {
    return await call()
  } catch (err) {
    throw asStoreError(err, what, id)
  }
}

function asStoreError(err: unknown, what: string, id: string): StoreError {
  return toStoreError(err, (why) => `session store ${what} failed for session ${id}: ${why}`)
}
