/**
 * The Redis clients RedisStore accepts, told apart by their shape at construction, so that
 * importing the store loads neither client library. Each client gets an adapter with the few
 * operations the store needs; the store itself never sees which client it runs on.
 */
import { adaptIoredis } from './ioredis.js'
import { adaptNodeRedis, adaptNodeRedisCluster } from './node-redis.js'
import type { Script } from './scripts.js'

/**
 * An ioredis `Redis` or `Cluster` (ioredis 5 or 6), described by the members the store relies
 * on so that these types need neither package installed.
 */
export interface IoredisClient {
  readonly status: string
  readonly isCluster: boolean
  defineCommand(...args: never[]): unknown
}

/** A node-redis v5 client, from `createClient()` (connect it before use). */
export interface NodeRedisClient {
  readonly isReady: boolean
  sendCommand(args: readonly string[], ...rest: never[]): Promise<unknown>
  scanIterator(...args: never[]): unknown
}

/** A node-redis v5 cluster, from `createCluster()` (connect it before use). */
export interface NodeRedisCluster {
  readonly masters: readonly unknown[]
  nodeClient(...args: never[]): Promise<unknown>
  sendCommand(
    firstKey: string | undefined,
    isReadonly: boolean | undefined,
    args: readonly string[],
    ...rest: never[]
  ): Promise<unknown>
}

/** Every client RedisStore accepts. */
export type RedisClient = IoredisClient | NodeRedisClient | NodeRedisCluster

/** One Redis server: a single client, or one master of a cluster. */
export interface RedisNode {
  /** Sends `args` (command name first) and resolves to the raw reply. */
  command(args: string[]): Promise<unknown>
}

/** What the store needs from a client; one implementation per client library. */
export interface RedisConnection {
  readonly isCluster: boolean
  /**
   * Runs `script` on the server holding `keys[0]`: EVALSHA, then EVAL if Redis answers
   * NOSCRIPT. Resolves to the raw reply (Lua false is null, a table an array).
   */
  script(script: Script, keys: string[], args: string[]): Promise<unknown>
  /** Sends `args` (command name first) to the server holding `key`. */
  command(key: string, args: string[]): Promise<unknown>
  /** The servers that hold data: the client itself, or every master of the cluster. */
  masters(): Promise<RedisNode[]>
  /** True if `err` is an error reply from Redis (so Redis is up), not a connection failure. */
  isReply(err: unknown): boolean
}

const ACCEPTED =
  'an ioredis Redis or Cluster, or a node-redis v5 client from createClient() or cluster from ' +
  'createCluster(), ' +
  'e.g. new RedisStore({ client: createClient({ url }) }) after await client.connect()'

/**
 * The adapter for `client`, or a TypeError that says which clients are accepted.
 *
 * @example
 * ```ts
 * const connection = connect(createClient({ url }))
 * ```
 */
export function connect(client: unknown): RedisConnection {
  if (typeof client === 'object' && client !== null) {
    const c = client as Record<string, unknown>
    if (typeof c.defineCommand === 'function' && typeof c.status === 'string')
      return adaptIoredis(client as never)
    if (
      typeof c.nodeClient === 'function' &&
      'masters' in c &&
      typeof c.sendCommand === 'function'
    ) {
      return adaptNodeRedisCluster(client as never)
    }
    if (
      typeof c.sendCommand === 'function' &&
      typeof c.scanIterator === 'function' &&
      'isReady' in c
    ) {
      return adaptNodeRedis(client as never)
    }
  }
  throw new TypeError(`RedisStore: client must be ${ACCEPTED}; got ${describe(client)}`)
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value)
  if (typeof value !== 'object') return typeof value
  const name = (value as object).constructor?.name
  return name && name !== 'Object' ? `an object of class ${name}` : 'an object that is neither'
}
