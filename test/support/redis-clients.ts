/**
 * Real clients of both libraries RedisStore accepts, for tests that run once per client:
 *
 *   for (const kind of CLIENT_KINDS) describe(kind, () => { ... clients.single(kind) ... })
 *
 * Every client made here is closed by `closeAll()`. Clients get an 'error' listener, since the
 * store leaves that to its user and tests see failures through rejections.
 */
import Redis, { Cluster } from 'ioredis'
import { createClient, createCluster } from 'redis'
import type { RedisClient } from '../../entries/redis'
import { startRedisCluster, type RedisClusterProcess } from './redis-cluster'
import { redisUrl, startRedisServer, type RedisProcess } from './redis-server'

export type ClientKind = 'ioredis' | 'node-redis'
export const CLIENT_KINDS: readonly ClientKind[] = ['ioredis', 'node-redis']

type NodeRedis = ReturnType<typeof createClient>
type NodeRedisCluster = ReturnType<typeof createCluster>

export interface SingleOptions {
  /** Fail at once instead of queueing commands while disconnected. */
  offlineQueue?: boolean
  /** Do not wait for the connection (Redis may not be up yet). */
  noWait?: boolean
  onError?: (err: Error) => void
}

export class TestClients {
  readonly #closers: (() => Promise<unknown>)[] = []
  readonly #servers: RedisProcess[] = []
  #cluster: Promise<RedisClusterProcess> | undefined

  /** A redis-server of the test's own (on `port`, or a free one), stopped by `closeAll()`. */
  async server(port?: number): Promise<RedisProcess> {
    const server = await startRedisServer(port === undefined ? {} : { port })
    this.#servers.push(server)
    return server
  }

  /** A client of `kind` on one server, connected (unless `noWait`). */
  async single(
    kind: ClientKind,
    url = redisUrl(),
    options: SingleOptions = {},
  ): Promise<RedisClient> {
    const onError = options.onError ?? (() => {})
    if (kind === 'ioredis') {
      const client = new Redis(url, { enableOfflineQueue: options.offlineQueue ?? true })
      client.on('error', onError)
      this.#closers.push(async () => client.disconnect())
      if (!options.noWait)
        await new Promise<void>((resolve) =>
          client.status === 'ready' ? resolve() : client.once('ready', () => resolve()),
        )
      return client
    }
    const client = createClient({
      url,
      disableOfflineQueue: options.offlineQueue === false,
      socket: { reconnectStrategy: (retries: number) => Math.min(50 * (retries + 1), 500) },
    })
    client.on('error', onError)
    this.#closers.push(async () => {
      if (client.isOpen) client.destroy()
    })
    const connecting = client.connect()
    connecting.catch(() => {})
    if (!options.noWait) await connecting
    return client as unknown as RedisClient
  }

  /** A client of `kind` on the file's 3-master cluster (started on first use), connected. */
  async cluster(kind: ClientKind): Promise<RedisClient> {
    this.#cluster ??= startRedisCluster(3)
    const { nodes } = await this.#cluster
    if (kind === 'ioredis') {
      const client = new Cluster(nodes)
      client.on('error', () => {})
      this.#closers.push(async () => client.disconnect())
      await new Promise<void>((resolve, reject) => {
        client.once('ready', () => resolve())
        client.once('end', () => reject(new Error('cluster client ended before ready')))
      })
      return client
    }
    const client = createCluster({
      rootNodes: nodes.map((n) => ({ url: `redis://${n.host}:${n.port}` })),
    })
    client.on('error', () => {})
    this.#closers.push(async () => {
      if (client.isOpen) client.destroy()
    })
    await client.connect()
    return client as unknown as RedisClient
  }

  /** The addresses of the cluster's masters (for assertions). */
  clusterNodes(): Promise<RedisClusterProcess['nodes']> {
    if (!this.#cluster) throw new Error('no cluster started')
    return this.#cluster.then((c) => c.nodes)
  }

  /** The cluster's redis-server processes (to pause or stop them). */
  clusterServers(): Promise<RedisClusterProcess['servers']> {
    if (!this.#cluster) throw new Error('no cluster started')
    return this.#cluster.then((c) => c.servers)
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.#closers.splice(0).map((close) => close().catch(() => {})))
    await Promise.all(this.#servers.splice(0).map((server) => server.stop()))
    if (this.#cluster) await (await this.#cluster).stop()
  }
}

/** Sends one raw command through either client (a single server). */
export function send(client: RedisClient, args: string[]): Promise<unknown> {
  if (client instanceof Redis) return client.call(args[0]!, ...args.slice(1))
  return (client as unknown as NodeRedis).sendCommand(args)
}

/** The address (ip:port) Redis sees for this client's connection, as MONITOR reports it. */
export async function addressOf(client: RedisClient): Promise<string> {
  const info = String(await send(client, ['CLIENT', 'INFO']))
  return /\baddr=(\S+)/.exec(info)![1]!
}

export type { NodeRedis, NodeRedisCluster }
