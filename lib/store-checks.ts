/**
 * The checks on `session()`'s first argument: is it a Store, or a common mistake in its place?
 */
import type { Store } from './store.js'

/**
 * The mistakes a JavaScript caller makes with the first argument, caught here rather than as
 * "no secret" on every request: options passed second behind something that is not a store, or
 * an express-session store or a Redis client where a concord Store belongs.
 *
 * @example
 * ```ts
 * checkFirstArgument(new MemoryStore(), { secret })  // ok
 * checkFirstArgument(redisClient, { secret })        // throws: wrap it in a RedisStore
 * ```
 */
export function checkFirstArgument(first: unknown, second: unknown): void {
  if (isStore(first)) return
  if (looksLikeLegacyStore(first)) {
    throw new TypeError(
      'session(store): this is an express-session store (get/set/destroy with callbacks), ' +
        'not a concord-session Store. Wrap it: session(adaptLegacyStore(store), options) ' +
        'with adaptLegacyStore from "concord-session/express-session", ' +
        'or pass it as options.store to the drop-in: ' +
        'require("concord-session/express-session")({ ...options, store })',
    )
  }
  if (looksLikeRedisClient(first)) {
    throw new TypeError(
      'session(client): this is a Redis client, not a session store. ' +
        'Wrap it: session(new RedisStore({ client }), options) ' +
        'with RedisStore from "concord-session/redis"',
    )
  }
  if (second !== undefined) {
    const got =
      first === null
        ? 'null'
        : first === undefined
          ? 'undefined'
          : Array.isArray(first)
            ? 'an array'
            : `a ${typeof first}`
    throw new TypeError(
      'session(store, options): the first argument must be a Store ' +
        `(load/save/touch/destroy), got ${got}. ` +
        'Pass the store first, as in session(new MemoryStore(), options), ' +
        'or only the options: session(options)',
    )
  }
}

function looksLikeLegacyStore(value: unknown): boolean {
  const v = value as Record<string, unknown> | null
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.get === 'function' &&
    typeof v.set === 'function' &&
    typeof v.destroy === 'function'
  )
}

/** ioredis (Redis, Cluster) and node-redis clients: they send commands, and have no load/save. */
function looksLikeRedisClient(value: unknown): boolean {
  const v = value as Record<string, unknown> | null
  return (
    typeof v === 'object' &&
    v !== null &&
    (typeof v.sendCommand === 'function' || typeof v.sendCommandAsync === 'function') &&
    typeof v.get === 'function' &&
    typeof v.set === 'function'
  )
}

/**
 * Whether `value` has a concord Store's methods (load, save, touch, destroy).
 *
 * @example
 * ```ts
 * isStore(new MemoryStore()) // true
 * isStore(legacyStore)       // false: get/set/destroy only
 * ```
 */
export function isStore(value: unknown): value is Store {
  const store = value as Store | null
  return (
    typeof store === 'object' &&
    store !== null &&
    typeof store.load === 'function' &&
    typeof store.save === 'function' &&
    typeof store.touch === 'function' &&
    typeof store.destroy === 'function'
  )
}
