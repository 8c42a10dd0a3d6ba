/**
 * Where the core meets protection at rest (at-rest.ts): the store it talks to, and the id a
 * session is stored under.
 */
import type { AtRestConfig } from './at-rest-options.js'
import { AtRestStore } from './at-rest.js'
import type { IdHashCache } from './id-hash-cache.js'
import type { Store } from './store.js'

/**
 * The store the core should talk to: `store` itself when nothing is protected at rest.
 *
 * @example
 * ```ts
 * const store = protectAtRest(options.store, options.atRest, idHashes)
 * ```
 */
export function protectAtRest(store: Store, config: AtRestConfig, hashes: IdHashCache): Store {
  if (!config.hashIds && config.encryptKeys === undefined) return store
  return new AtRestStore(store, config, hashes)
}

/**
 * The id the store keeps the session `id` under, for the store the core talks to.
 *
 * @example
 * ```ts
 * storedIdIn(host.store, req.session.id) // the keyed hash, with hashIds on
 * ```
 */
export function storedIdIn(store: Store, id: string): string {
  return store instanceof AtRestStore ? store.storedId(id) : id
}
