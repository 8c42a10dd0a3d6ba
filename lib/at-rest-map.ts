import type { Store } from './store.js'

/**
 * A Map that holds at most `max` entries, the oldest set going first, for what protection at
 * rest remembers between a load and a save in one process.
 */
export class BoundedMap<K, V> {
  readonly #entries = new Map<K, V>()

  constructor(readonly max = 10_000) {}

  /**
   * @example
   * ```ts
   * const renewed = new BoundedMap<string, string>(2)
   * renewed.set('a', '1')
   * renewed.get('a') // '1'
   * ```
   */
  set(key: K, value: V): void {
    this.#entries.delete(key)
    if (this.#entries.size >= this.max) this.#entries.delete(this.#entries.keys().next().value as K)
    this.#entries.set(key, value)
  }

  get(key: K): V | undefined {
    return this.#entries.get(key)
  }

  /** The value under `key`, removed. */
  take(key: K): V | undefined {
    const value = this.#entries.get(key)
    if (value !== undefined) this.#entries.delete(key)
    return value
  }
}

/**
 * Renewals made in this process, shared by every middleware over one store object. Another
 * process's renewal is not known here: its requests with the old id go on under the old id,
 * which the store forwards through the grace window.
 */
const RENEWED = new WeakMap<Store, BoundedMap<string, string>>()

export function renewedIn(store: Store): BoundedMap<string, string> {
  let renewed = RENEWED.get(store)
  if (!renewed) RENEWED.set(store, (renewed = new BoundedMap()))
  return renewed
}
