/**
 * Real stores over links a test can break, for test/fault-suite.ts: a RedisStore on a
 * redis-server of the test's own, and a PostgresStore on the machine's PostgreSQL, each reached
 * through a TCP proxy (see startProxy). Hanging stops the redis-server (SIGSTOP) or holds every
 * byte at the proxy; killing resets every connection at the proxy and refuses new ones.
 */
import Redis from 'ioredis'
import { PostgresStore } from '../../entries/postgres'
import { RedisStore, type RedisClient } from '../../entries/redis'
import type { FaultyStore } from '../fault-suite'
import { makePool, startProxy } from './postgres'
import { send, type ClientKind, type NodeRedis, type TestClients } from './redis-clients'

/** Retries `call` until it succeeds: the client has reconnected and sent what it queued. */
async function eventually(call: () => Promise<unknown>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await call()
      return
    } catch (err) {
      if (attempt > 400) throw err
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
}

/** A RedisStore through `kind` on a server of its own, with `timeout` ms per call. */
export async function faultyRedis(
  clients: TestClients,
  kind: ClientKind,
  prefix: string,
  timeout: number,
): Promise<FaultyStore & { client: RedisClient }> {
  const server = await clients.server()
  const proxy = await startProxy(server.port)
  const client = await clients.single(kind, `redis://127.0.0.1:${proxy.port}`)
  // A command answered after the others sent on its connection: Redis ran everything before it.
  const ping = () => eventually(() => send(client, ['PING']))
  return {
    client,
    store: new RedisStore({ client, prefix, timeout }),
    hang: () => server.pause(),
    async resume() {
      server.resume()
      await ping()
    },
    kill: async () => proxy.cut(),
    async restart() {
      proxy.restore()
      await ping()
    },
    async close() {
      // The client goes first, so it does not keep reconnecting to a closed proxy.
      if (client instanceof Redis) client.disconnect()
      else (client as unknown as NodeRedis).destroy()
      await proxy.close()
    },
  }
}

/** A PostgresStore on `schema`.sessions with `timeout` ms per call. */
export async function faultyPostgres(schema: string, timeout: number): Promise<FaultyStore> {
  const proxy = await startProxy()
  const pool = makePool({ port: proxy.port, connectionTimeoutMillis: timeout, max: 4 })
  const direct = makePool({ max: 1 })
  /** Resolves once no other backend runs a statement on the table (a held save has finished). */
  async function idle(): Promise<void> {
    for (;;) {
      const { rowCount } = await direct.query(
        `SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state = 'active' AND query LIKE $1`,
        [`%"${schema}"."sessions"%`],
      )
      if (rowCount === 0) return
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  return {
    store: new PostgresStore({ pool, schema, table: 'sessions', timeout }),
    hang: () => proxy.hang(),
    async resume() {
      proxy.restore()
      await proxy.drained() // every held statement reached the server and was answered
      await idle()
    },
    kill: async () => proxy.cut(),
    restart: async () => proxy.restore(),
    async close() {
      await pool.end().catch(() => {})
      await direct.end()
      await proxy.close()
    },
  }
}
