/**
 * The expiry an adapter last wrote per session id, so touch throttling works on express-session
 * stores whose `touch()` moves only their own TTL (connect-pg-simple's `expire` column,
 * connect-redis's key TTL) and leaves the stored session, and the expiry recorded in it, as it
 * was.
 *
 * What is remembered is per process and bounded: at most `limit` ids, the least recently used
 * forgotten first. A forgotten id costs one extra touch write at most: the adapter then judges
 * by the expiry recorded in the stored session, writes, and remembers again.
 */

/** Default number of session ids an adapter remembers a written expiry for. */
export const DEFAULT_REMEMBERED_EXPIRIES = 10_000

interface Written {
  /** The expiry this process wrote last. */
  expiresAt: number
  /** The stored session's version and recorded expiry just after that write. */
  version: number
  recorded: number
}

/**
 * A bounded, least-recently-used memory of written expiries.
 *
 * @example
 * ```ts
 * const written = new WrittenExpiries(10_000)
 * written.wrote('sid', { version: 3, expiresAt: 1_000 }, 61_000) // touch() moved only the TTL
 * written.known('sid', { version: 3, expiresAt: 1_000 }) // 61_000
 * written.known('sid', { version: 4, expiresAt: 9_000 }) // 9_000: saved since, the blob rules
 * ```
 */
export class WrittenExpiries {
  readonly limit: number
  readonly #entries = new Map<string, Written>()

  constructor(limit = DEFAULT_REMEMBERED_EXPIRIES) {
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new TypeError(
        'adaptLegacyStore(store, { rememberExpiries }): rememberExpiries must be a whole ' +
          `number of session ids, 0 or more (got ${String(limit)})`,
      )
    }
    this.limit = limit
  }

  /** Ids remembered now; never more than `limit`. */
  get size(): number {
    return this.#entries.size
  }

  /**
   * Records that this process wrote `expiresAt` for `id`; `stored` is the session as the store
   * holds it after the write (its version and the expiry recorded in it).
   */
  wrote(id: string, stored: { version: number; expiresAt: number }, expiresAt: number): void {
    if (this.limit === 0) return
    this.#entries.delete(id)
    this.#entries.set(id, { expiresAt, version: stored.version, recorded: stored.expiresAt })
    // Map keeps insertion order: the first key is the least recently used.
    if (this.#entries.size > this.limit) this.#entries.delete(this.#entries.keys().next().value!)
  }

  /**
   * The best known stored expiry of `read`, the session as just read: the later of the expiry
   * recorded in it and the one this process wrote, while the session is the one written then
   * (same version and recorded expiry). Once a save rewrote it, its recorded expiry is the
   * store's own again, so the memory is dropped.
   */
  known(id: string, read: { version: number; expiresAt: number }): number {
    const entry = this.#entries.get(id)
    if (!entry) return read.expiresAt
    if (entry.version !== read.version || entry.recorded !== read.expiresAt) {
      this.#entries.delete(id)
      return read.expiresAt
    }
    this.#entries.delete(id)
    this.#entries.set(id, entry)
    return Math.max(read.expiresAt, entry.expiresAt)
  }

  /** Forgets `id` (destroyed, regenerated away from, or gone from the store). */
  forget(id: string): void {
    this.#entries.delete(id)
  }
}
