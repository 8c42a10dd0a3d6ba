/** MemoryStore's options and the one place they are checked. */
import { rejectUnknownKeys, requirePositive } from '../../lib/check-options.js'

/**
 * Options for {@link MemoryStore}; bad values throw a TypeError at construction.
 *
 * @example
 * ```ts
 * const options: MemoryStoreOptions = { max: 100_000, sweepInterval: 30_000 }
 * const store = new MemoryStore(options)
 * ```
 */
export interface MemoryStoreOptions {
  /**
   * The most sessions held at once. Creating one more evicts the least recently used.
   * Unbounded by default.
   */
  max?: number
  /** How often, in ms, expired sessions are swept. Default 60 000. */
  sweepInterval?: number
}

/**
 * Throws a TypeError naming any option MemoryStore does not know (and what to use instead).
 *
 * @example
 * ```ts
 * rejectUnknownMemoryOptions({ ttl: 1000 }) // throws: lifetime follows the cookie
 * ```
 */
export function rejectUnknownMemoryOptions(options: MemoryStoreOptions): void {
  rejectUnknownKeys('MemoryStore', options ?? {}, ['max', 'sweepInterval'], {
    ttl:
      "a session's lifetime follows its cookie: set session({ cookie: { maxAge } }), and " +
      'idleTimeout for browser-session cookies',
    checkPeriod: "that is memorystore's option; use sweepInterval",
  })
}

/**
 * Checks the values of MemoryStore's options and fills in the defaults.
 *
 * @example
 * ```ts
 * const { max, sweepInterval } = memoryStoreSettings({ max: 1000 })
 * ```
 */
export function memoryStoreSettings(options: MemoryStoreOptions): Required<MemoryStoreOptions> {
  const { max = Infinity, sweepInterval = 60_000 } = options
  if (max !== Infinity && (!Number.isInteger(max) || max < 1)) {
    throw new TypeError(`MemoryStore: max must be a positive integer, got ${String(max)}`)
  }
  requirePositive('MemoryStore', 'sweepInterval', sweepInterval, 'ms')
  return { max, sweepInterval }
}
