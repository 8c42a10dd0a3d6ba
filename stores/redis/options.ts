/**
 * RedisStore's options, and the one place they are checked. A bad value throws a TypeError
 * at construction that says what to change; nothing is checked per call.
 */
import { rejectUnknownKeys, requirePositive } from '../../lib/check-options.js'
import { connect, type RedisClient, type RedisConnection } from './client.js'

/** What connect-redis users pass, and what to do instead. */
const CONNECT_REDIS_HINTS = {
  ttl:
    "that is connect-redis's option; a session's lifetime follows its cookie here: set " +
    'session({ cookie: { maxAge } }), and idleTimeout for browser-session cookies',
  disableTouch:
    "that is connect-redis's option; a read touches the session in the same round trip as its " +
    'load, so there is nothing to disable',
  disableTTL: "that is connect-redis's option; every session key expires with the session",
  serializer:
    "that is connect-redis's option; each session key is stored as its own JSON text in a hash",
}

/**
 * Options of {@link RedisStore}.
 *
 * @example
 * ```ts
 * new RedisStore({ client: createClient({ url }), prefix: 'myapp:sess:', timeout: 1000 })
 * new RedisStore({ client, prefix: 'sess:', legacyPrefix: 'sess:' }) // read connect-redis sessions too
 * ```
 */
export interface RedisStoreOptions {
  /**
   * An ioredis `Redis` or `Cluster`, or a node-redis v5 client (`createClient()`) or cluster
   * (`createCluster()`), connected. The store never connects, quits or listens to it: attach
   * your own `client.on('error', ...)` and close it yourself.
   */
  client: RedisClient
  /** Prefix of every key this store writes. Default `'sess:'`, as connect-redis. */
  prefix?: string
  /**
   * Read sessions that express-session + connect-redis wrote (a JSON string at
   * `legacyPrefix + id`) and convert each to a hash on its first save. Usually `'sess:'`.
   * On a cluster it must equal `prefix`, so the conversion stays within one key.
   */
  legacyPrefix?: string
  /**
   * How long, in ms, one store call may take before it fails with a StoreError
   * (status 503, code `ETIMEDOUT`), for example while Redis is down. Default 2000.
   * `count` and `clear` apply it to each SCAN batch, since they walk the whole keyspace.
   */
  timeout?: number
}

/** The options after checking, with the client's adapter. */
export interface ResolvedOptions {
  connection: RedisConnection
  prefix: string
  legacyPrefix: string | undefined
  timeout: number
}

/**
 * Checks `options` and detects the client.
 *
 * @example
 * ```ts
 * const { connection, prefix } = resolveOptions({ client })
 * ```
 */
export function resolveOptions(options: RedisStoreOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(
      'RedisStore: pass an options object with a client, e.g. new RedisStore({ client })',
    )
  }
  rejectUnknownKeys(
    'RedisStore',
    options,
    ['client', 'prefix', 'legacyPrefix', 'timeout'],
    CONNECT_REDIS_HINTS,
  )
  const { client, prefix = 'sess:', legacyPrefix, timeout = 2000 } = options
  const connection = connect(client)
  if (typeof prefix !== 'string' || prefix === '') {
    throw new TypeError(
      `RedisStore: prefix must be a non-empty string (so count() and clear() see only this ` +
        `store's keys), got ${JSON.stringify(prefix)}`,
    )
  }
  if (legacyPrefix !== undefined && (typeof legacyPrefix !== 'string' || legacyPrefix === '')) {
    throw new TypeError(
      `RedisStore: legacyPrefix must be a non-empty string such as 'sess:', got ` +
        `${JSON.stringify(legacyPrefix)}`,
    )
  }
  if (legacyPrefix !== undefined && connection.isCluster && legacyPrefix !== prefix) {
    throw new TypeError(
      'RedisStore: on a Redis Cluster legacyPrefix must equal prefix, so each session converts ' +
        'in place within one key (one slot)',
    )
  }
  requirePositive('RedisStore', 'timeout', timeout, 'ms')
  return { connection, prefix, legacyPrefix, timeout }
}
