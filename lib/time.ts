/**
 * Time constants shared by the core, the drop-in and the stores.
 *
 * @example
 * ```ts
 * import { ONE_DAY_MS } from './time.js'
 * const idleTimeout = options.idleTimeout ?? ONE_DAY_MS
 * ```
 */

/** One day in milliseconds: express-session's default lifetime for a cookie without maxAge. */
export const ONE_DAY_MS = 86_400_000
