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
import { StoreError } from './store.js'
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
  async call<T>(run: () => Promise<T>, what: string, id: string, queued = false): Promise<T> {
    let probe = false
    if (this.#down) {
      const now = Date.now()
      // A probe that has not answered within a save's bound no longer blocks the next one.
      const probing =
        this.#probeStartedAt !== 0 && now - this.#probeStartedAt < 2 * this.saveTimeout
      if (queued || probing) {
        throw new StoreError(
          'session store is unavailable (a recent call failed); ' +
            `${what} of session ${id} was not attempted`,
          { code: 'EUNAVAILABLE' },
        )
      }
      probe = true
      this.#probeStartedAt = now
    }
    try {
      // callStore inlined: one promise fewer on every store call.
      const result = await run()
      this.#down = false
      return result
    } catch (err) {
      if (!(err instanceof StoreError && NOT_OUTAGES.has(err.code))) this.#down = true
      throw asStoreError(err, what, id)
    } finally {
      if (probe) this.#probeStartedAt = 0
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
