/**
 * RedisStore's adapters for node-redis v5: a client from `createClient()` and a cluster from
 * `createCluster()`. Types only are imported from the `redis` package, so loading this file
 * loads no client library. node-redis writes the commands of one tick in one socket write.
 */
import type { RedisClientType, RedisClusterType } from 'redis'
import type { RedisConnection, RedisNode } from './client.js'
import { isNoScript, type Script } from './scripts.js'

type Client = Pick<RedisClientType, 'sendCommand'>
type Cluster = Pick<RedisClusterType, 'sendCommand' | 'masters' | 'nodeClient'>

/**
 * The connection for a node-redis client.
 *
 * @example
 * ```ts
 * const connection = adaptNodeRedis(await createClient({ url }).connect())
 * ```
 */
export function adaptNodeRedis(client: Client): RedisConnection {
  const send = (args: string[]) => client.sendCommand(args)
  return new NodeRedisConnection(
    false,
    (_key, args) => send(args),
    async () => [{ command: send }],
  )
}

/**
 * The connection for a node-redis cluster: scripts and commands go to the master of their
 * key's slot, and SCAN walks every master.
 *
 * @example
 * ```ts
 * const connection = adaptNodeRedisCluster(await createCluster({ rootNodes }).connect())
 * ```
 */
export function adaptNodeRedisCluster(cluster: Cluster): RedisConnection {
  return new NodeRedisConnection(
    true,
    (key, args) => cluster.sendCommand(key, false, args),
    async () =>
      Promise.all(
        cluster.masters.map(async (master): Promise<RedisNode> => {
          const client = await cluster.nodeClient(master)
          return { command: (args) => client.sendCommand(args) }
        }),
      ),
  )
}

class NodeRedisConnection implements RedisConnection {
  readonly isCluster: boolean
  readonly command: (key: string, args: string[]) => Promise<unknown>
  readonly masters: () => Promise<RedisNode[]>

  constructor(
    isCluster: boolean,
    command: (key: string, args: string[]) => Promise<unknown>,
    masters: () => Promise<RedisNode[]>,
  ) {
    this.isCluster = isCluster
    this.command = command
    this.masters = masters
  }

  script(script: Script, keys: string[], args: string[]): Promise<unknown> {
    const key = keys[0]!
    return this.command(key, ['EVALSHA', script.sha, String(keys.length), ...keys, ...args]).catch(
      (err: unknown) => {
        if (!isNoScript(err)) throw err
        return this.command(key, ['EVAL', script.lua, String(keys.length), ...keys, ...args])
      },
    )
  }

  isReply(err: unknown): boolean {
    // node-redis's ErrorReply (and its SimpleError, BlobError) carries Redis's answer.
    for (
      let proto = err instanceof Error ? Object.getPrototypeOf(err) : null;
      proto;
      proto = Object.getPrototypeOf(proto)
    ) {
      if (proto.constructor?.name === 'ErrorReply') return true
    }
    return false
  }
}
