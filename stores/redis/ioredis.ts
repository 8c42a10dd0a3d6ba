/**
 * RedisStore's adapter for ioredis `Redis` and `Cluster`. Types only are imported from ioredis,
 * so loading this file loads no client library. On a single server, the store's script calls
 * of one turn of the event loop share one socket write (see IoredisConnection.script).
 */
import type { Writable } from 'node:stream'
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

/** A script call waiting for the end of this turn of the event loop. */
interface Queued {
  script: Script
  keys: string[]
  args: string[]
  resolve(value: unknown): void
  reject(err: unknown): void
}

class IoredisConnection implements RedisConnection {
  readonly isCluster: boolean
  readonly #client: Redis | Cluster
  /** The script calls made in this turn of the event loop (single server only). */
  #queued: Queued[] = []
  readonly #sendQueued = (): void => this.#send()

  constructor(client: Redis | Cluster) {
    this.#client = client
    this.isCluster = client.isCluster
  }

  script(script: Script, keys: string[], args: string[]): Promise<unknown> {
    // On a Cluster, ioredis routes EVALSHA and EVAL by their first key.
    if (this.isCluster) return this.#run(script, keys, args)
    // ioredis writes each command to its socket at once; the store's calls of one turn go out
    // together at its end instead (one write for all, as node-redis does for every command).
    return new Promise((resolve, reject) => {
      if (this.#queued.push({ script, keys, args, resolve, reject }) === 1)
        setImmediate(this.#sendQueued)
    })
  }

  /**
   * Sends the queued calls in one socket write: the socket is corked while they are sent, all
   * in this one synchronous step, so no other command of the client's can come between them
   * and the replies keep the order ioredis expects. Commands of the app are not held back.
   */
  #send(): void {
    const queued = this.#queued
    this.#queued = []
    const client = this.#client as Redis
    // Only while ready: before that, ioredis keeps the commands in its own offline queue.
    const stream =
      queued.length > 1 && client.status === 'ready'
        ? (client as unknown as { stream?: Writable }).stream
        : undefined
    stream?.cork()
    try {
      for (const call of queued) {
        try {
          call.resolve(this.#run(call.script, call.keys, call.args))
        } catch (err) {
          call.reject(err)
        }
      }
    } finally {
      stream?.uncork()
    }
  }

  #run(script: Script, keys: string[], args: string[]): Promise<unknown> {
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
