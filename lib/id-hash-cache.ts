/**
 * The keyed hashes of recently seen session ids, so tracing and events hash each id once rather
 * than on every operation (an HMAC costs more than the rest of a traced call). Bounded: the
 * oldest entry goes first once `max` are held.
 */
import { hashSessionId } from './id-hash.js'

export class IdHashCache {
  readonly #entries = new Map<string, string>()
  /** Hash to id, for the entries held: turns a stored key a store reports back into its id. */
  readonly #ids = new Map<string, string>()

  constructor(
    readonly key: string | Buffer,
    readonly max = 10_000,
  ) {}

  /**
   * The keyed hash of `id`.
   *
   * @example
   * ```ts
   * new IdHashCache('concord-session').get(req.session.id) // same as hashSessionId(id, key)
   * ```
   */
  get(id: string): string {
    const hit = this.#entries.get(id)
    if (hit !== undefined) return hit
    const hash = hashSessionId(id, this.key)
    if (this.#entries.size >= this.max) {
      const oldest = this.#entries.keys().next().value as string
      this.#ids.delete(this.#entries.get(oldest)!)
      this.#entries.delete(oldest)
    }
    this.#entries.set(id, hash)
    this.#ids.set(hash, id)
    return hash
  }

  /**
   * The id whose hash is `hash`, if this cache made it and still holds it; else undefined.
   *
   * @example
   * ```ts
   * const cache = new IdHashCache('key')
   * cache.original(cache.get('abc')) // 'abc'
   * ```
   */
  original(hash: string): string | undefined {
    return this.#ids.get(hash)
  }
}
