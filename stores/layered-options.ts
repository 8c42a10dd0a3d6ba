/**
 * The options of a LayeredStore, and their check when it is constructed.
 */
import type { Store } from '../lib/store.js'
import { rejectUnknownKeys, requirePositive } from '../lib/check-options.js'
import { MemoryStore } from './memory/store.js'

/**
 * Options of {@link LayeredStore}, checked when it is constructed.
 *
 * @example
 * ```ts
 * new LayeredStore({
 *   hot: new RedisStore({ client: redis }),
 *   cold: new PostgresStore({ pool }),
 *   hotTtl: 5 * 60_000,
 * })
 * new LayeredStore({ hot: new MemoryStore({ max: 10_000 }), cold, singleProcess: true })
 * ```
 */
export interface LayeredStoreOptions {
  /** The fast store that holds active sessions, e.g. a RedisStore. */
  hot: Store
  /** The durable store, the source of truth, e.g. a PostgresStore. */
  cold: Store
  /**
   * The longest, in ms, hot serves an entry after it was filled or saved; the next read checks
   * cold and refills it. Default 5 minutes.
   */
  hotTtl?: number
  /**
   * Required, as `true`, when the hot layer lives in this process (a MemoryStore): nothing tells
   * other processes' hot layers about this one's writes, so it is only correct when this is the
   * only process using the cold store.
   */
  singleProcess?: boolean
  /**
   * After a hot-layer failure, how long in ms to use the cold store alone before trying hot again.
   * Default 1000.
   */
  hotRetryAfter?: number
}

/** The options with their defaults, once checked. */
export interface CheckedLayeredOptions {
  hot: Store
  cold: Store
  hotTtl: number
  hotRetryAfter: number
}

/**
 * Checks a LayeredStore's options, with messages that say what to pass instead.
 *
 * @example
 * ```ts
 * const { hot, cold, hotTtl } = checkLayeredOptions({ hot: redisStore, cold: postgresStore })
 * ```
 */
export function checkLayeredOptions(options: LayeredStoreOptions): CheckedLayeredOptions {
  const {
    hot,
    cold,
    hotTtl = 5 * 60_000,
    singleProcess = false,
    hotRetryAfter = 1000,
  } = options ?? ({} as LayeredStoreOptions)
  rejectUnknownKeys('LayeredStore', options ?? {}, [
    'hot',
    'cold',
    'hotTtl',
    'singleProcess',
    'hotRetryAfter',
  ])
  for (const [name, store] of [
    ['hot', hot],
    ['cold', cold],
  ] as const) {
    if (
      !store ||
      typeof store.load !== 'function' ||
      typeof store.save !== 'function' ||
      typeof store.destroy !== 'function'
    ) {
      throw new TypeError(
        `LayeredStore: ${name} must be a concord-session Store (load, save, touch, destroy), ` +
          `got ${String(store)}`,
      )
    }
  }
  if (hot === cold) throw new TypeError('LayeredStore: hot and cold must be two different stores')
  if (typeof hotTtl !== 'number' || !Number.isFinite(hotTtl) || hotTtl < 1000) {
    throw new TypeError(
      `LayeredStore: hotTtl must be a number of ms, at least 1000 (it must outlast a refill in ` +
        `flight), got ${String(hotTtl)}`,
    )
  }
  requirePositive('LayeredStore', 'hotRetryAfter', hotRetryAfter, 'ms')
  if (hot instanceof MemoryStore && singleProcess !== true) {
    throw new TypeError(
      'LayeredStore: a MemoryStore hot layer lives in one process and would serve stale ' +
        'sessions when other processes write to the cold store. Use a shared hot store ' +
        '(RedisStore), or pass singleProcess: true if this is the only process',
    )
  }
  return { hot, cold, hotTtl, hotRetryAfter }
}
