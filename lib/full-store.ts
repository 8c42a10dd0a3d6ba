import type { Clearable, Closable, Countable, Store, UserIndex } from './store.js'
import type { ReportsLifecycle } from './store-notices.js'

/**
 * A store with the whole contract but renewal: the core calls, the per-user index, `count`,
 * `clear`, `close` and lifecycle notices. Every bundled store implements it.
 *
 * @example
 * ```ts
 * class MyStore implements FullStore {
 *   // load, save, touch, destroy, listByUser, destroyByUser, count, clear, close, onLifecycle
 * }
 * ```
 */
export interface FullStore
  extends Store, UserIndex, Countable, Clearable, Closable, ReportsLifecycle {}
