/**
 * The hot layer of a LayeredStore as the store sees it: skipped for `hotRetryAfter` ms after it
 * fails, and told what it missed meanwhile before it serves again.
 */
import createDebug from 'debug'
import type { Store } from '../lib/store.js'
import { isClearable } from '../lib/store.js'
import { putHot, type HotVersion, type HotWrite } from './layered-entry.js'

const debug = createDebug('concord-session:layered')

/** More ids than this to repair after a hot outage, and the hot layer is cleared instead. */
const MAX_PENDING = 10_000

/** The hot store, with its outages and the writes it missed during them. */
export class HotLayer {
  readonly #hot: Store
  readonly #hotTtl: number
  readonly #retryAfter: number
  #hotDownUntil = 0
  /** Sessions written while hot was skipped: what hot must learn before it serves again. */
  readonly #pending = new Map<string, HotWrite>()
  #repairing: Promise<boolean> | undefined

  constructor(hot: Store, hotTtl: number, retryAfter: number) {
    this.#hot = hot
    this.#hotTtl = hotTtl
    this.#retryAfter = retryAfter
  }

  /**
   * Writes to hot, or remembers what hot must learn when it is back. `seen`, the entry a load of
   * this process saw, lets a change go onto it in one call. Resolves to the live entry written.
   */
  async write(id: string, write: HotWrite, seen?: HotVersion): Promise<HotVersion | undefined> {
    if (this.ready() || (await this.usable())) {
      try {
        return await putHot(this.#hot, id, write, this.#hotTtl, Date.now(), seen)
      } catch (err) {
        this.failed('write', err)
      }
    }
    // Hot could not take it: mark the session there before hot serves again.
    this.#pending.set(
      id,
      write.kind === 'dead'
        ? write
        : {
            kind: 'marker',
            version:
              write.kind === 'session'
                ? write.record.version
                : write.kind === 'change'
                  ? write.version
                  : 0,
          },
    )
    return undefined
  }

  /** Hot is usable with nothing to repair: the check a read makes without waiting. */
  ready(): boolean {
    return this.#pending.size === 0 && Date.now() >= this.#hotDownUntil
  }

  /** Hot is usable unless it failed within hotRetryAfter, and once what it missed is repaired. */
  async usable(): Promise<boolean> {
    if (Date.now() < this.#hotDownUntil) return false
    if (this.#pending.size === 0) return true
    return (this.#repairing ??= this.#repair().finally(() => (this.#repairing = undefined)))
  }

  async #repair(): Promise<boolean> {
    try {
      if (this.#pending.size > MAX_PENDING && isClearable(this.#hot)) {
        await this.#hot.clear()
        this.#pending.clear()
        return true
      }
      for (const [id, write] of [...this.#pending]) {
        await putHot(this.#hot, id, write, this.#hotTtl)
        if (this.#pending.get(id) === write) this.#pending.delete(id)
      }
      return true
    } catch (err) {
      this.failed('repair', err)
      return false
    }
  }

  failed(what: string, err: unknown): void {
    if (Date.now() >= this.#hotDownUntil)
      debug('hot layer failed (%s); using cold alone for %d ms: %O', what, this.#retryAfter, err)
    this.#hotDownUntil = Date.now() + this.#retryAfter
  }
}
