/**
 * The hot entries a LayeredStore process last read or wrote, by id: with the entry's version in
 * the hot store's numbering, a save goes onto it by compare-and-set in one call.
 */
import type { HotVersion } from './layered-entry.js'

/** How many sessions' hot versions are remembered; the oldest remembered is dropped first. */
const MAX_SEEN = 10_000

/**
 * A bounded map from session id to the hot entry's versions this process saw last.
 *
 * @example
 * ```ts
 * const seen = new SeenVersions()
 * seen.remember(id, { hot: 3, cold: 7 })
 * seen.get(id) // { hot: 3, cold: 7 }
 * ```
 */
export class SeenVersions {
  readonly #seen = new Map<string, HotVersion>()
  readonly #max: number

  constructor(max = MAX_SEEN) {
    this.#max = max
  }

  get(id: string): HotVersion | undefined {
    return this.#seen.get(id)
  }

  /** Remembers the entry last seen for `id`, dropping the oldest id when full. */
  remember(id: string, version: HotVersion): void {
    const seen = this.#seen
    if (seen.size >= this.#max && !seen.has(id)) seen.delete(seen.keys().next().value!)
    seen.set(id, version)
  }

  /** Forgets `id`: its next save finds the hot entry by asking the hot store. */
  forget(id: string): void {
    this.#seen.delete(id)
  }
}
