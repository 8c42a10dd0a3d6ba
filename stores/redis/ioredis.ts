/**
 * RedisStore's adapter for ioredis `Redis` and `Cluster`. Types only are imported from ioredis,
 * so loading this file loads no client library.
 */
import type { Cluster, Redis } from 'ioredis'
import type { RedisConnection, RedisNode } from './client.js'
import { isNoScript, type Script } from './scripts.js'

/**
 * The connection for an ioredis client. Refuses a client with ioredis's `keyPrefix`: the store
 * SCANs for its keys, and SCAN patterns and replies do not get that prefix.
 *
 * @example
 * ```ts
 * const connection = adaptIoredis(new Redis(url))
 * ```
 */
export function adaptIoredis(client: Redis | Cluster): RedisConnection {
  const options = (
    client as { options?: { keyPrefix?: string; redisOptions?: { keyPrefix?: string } } }
  ).options
  if (options?.keyPrefix || options?.redisOptions?.keyPrefix) {
    throw new TypeError(
      "RedisStore: the client has ioredis's keyPrefix set; remove it and pass the store's prefix " +
        'option instead (SCAN does not apply keyPrefix)',
    )
  }
  return new IoredisConnection(client)
}

class IoredisConnection implements RedisConnection {
  readonly isCluster: boolean
  readonly #client: Redis | Cluster

  constructor(client: Redis | Cluster) {
    this.#client = client
    this.isCluster = client.isCluster
  }

  script(script: Script, keys: string[], args: string[]): Promise<unknown> {
    // On a Cluster, ioredis routes EVALSHA and EVAL by their first key.
    // The arrays as they are: ioredis flattens its arguments one level anyway, so spreading
    // them here would only build one more copy of the argument list per call.
    const client = this.#client as unknown as Flattening
    return client.evalsha(script.sha, keys.length, keys, args).catch((err: unknown) => {
      if (!isNoScript(err)) throw err
      return client.eval(script.lua, keys.length, keys, args)
    })
  }

  command(_key: string, args: string[]): Promise<unknown> {
    // ioredis finds the key (and so the cluster slot) in the arguments itself.
    return this.#client.call(args[0]!, ...args.slice(1))
  }

  async masters(): Promise<RedisNode[]> {
    const client = this.#client
    if (!client.isCluster) return [node(client as Redis)]
    const cluster = client as Cluster
    if (cluster.status !== 'ready') {
      // The slot map, and so the list of masters, is known once the cluster is ready.
      await new Promise<void>((resolve) => cluster.once('ready', () => resolve()))
    }
    return cluster.nodes('master').map(node)
  }

  isReply(err: unknown): boolean {
    return err instanceof Error && err.name === 'ReplyError'
  }
}

/** EVALSHA and EVAL as ioredis takes them: array arguments are flattened into the command. */
interface Flattening {
  evalsha(sha: string, numkeys: number, keys: string[], args: string[]): Promise<unknown>
  eval(lua: string, numkeys: number, keys: string[], args: string[]): Promise<unknown>
}

function node(redis: Redis): RedisNode {
  return { command: (args) => redis.call(args[0]!, ...args.slice(1)) }
}
