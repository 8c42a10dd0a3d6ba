/**
 * PostgreSQL for tests: the machine's server on 127.0.0.1:5432 (database `test`), a schema of
 * the test's own that it drops afterwards (and nothing else), and a TCP proxy in front of the
 * server that a test can cut or hang to play an outage without touching the server itself.
 */
import { randomBytes } from 'node:crypto'
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net'
import pg from 'pg'

export const PG_HOST = '127.0.0.1'
export const PG_PORT = 5432
export const PG_URL =
  process.env.CONCORD_TEST_PG_URL ?? `postgres://postgres@${PG_HOST}:${PG_PORT}/test`

/** A schema name no other run uses: `concord_test_<label>_<random>`. */
export function testSchema(label: string): string {
  return `concord_test_${label}_${randomBytes(4).toString('hex')}`
}

/** A pool on the test database (or through a proxy on `port`) with short connect timeouts. */
export function makePool(options: Omit<pg.PoolConfig, 'port'> & { port?: number } = {}): pg.Pool {
  const { port, ...rest } = options
  const url = new URL(PG_URL)
  if (port !== undefined) url.port = String(port)
  const pool = new pg.Pool({
    connectionString: url.toString(),
    connectionTimeoutMillis: 5000,
    max: 10,
    ...rest,
  })
  // An idle client whose server went away is reported here; without a listener it would crash.
  pool.on('error', () => {})
  return pool
}

/** Drops the schema this test created, and only it. */
export async function dropSchema(schema: string): Promise<void> {
  if (!/^concord_test_[a-z0-9_]+$/.test(schema))
    throw new Error(`refusing to drop ${schema}: not a test schema`)
  const pool = makePool({ max: 1 })
  try {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  } finally {
    await pool.end()
  }
}

/**
 * A TCP proxy to PostgreSQL that the test controls:
 * - `cut()` resets every connection and refuses new ones (the server is gone);
 * - `hang()` keeps connections open but holds every byte (the network or server stalls);
 * - `restore()` forwards again, delivering what `hang()` held, in order.
 */
export interface CuttableProxy {
  port: number
  cut(): void
  hang(): void
  restore(): void
  /**
   * Resolves once every connection that had bytes held has delivered them and been closed by
   * the server: a statement sent during a hang, then the client's goodbye, has been processed.
   */
  drained(): Promise<void>
  /** Round trips so far: bursts of bytes from a client that follow a reply (or open a connection). */
  roundTrips(): number
  close(): Promise<void>
}

export async function startProxy(targetPort = PG_PORT): Promise<CuttableProxy> {
  let mode: 'open' | 'cut' | 'hang' = 'open'
  let roundTrips = 0
  const pairs = new Set<{
    client: Socket
    upstream: Socket
    held: Array<() => void>
    heldEver: boolean
  }>()
  const waiters: Array<() => void> = []
  const settle = () => {
    if ([...pairs].every((p) => !p.heldEver || (p.held.length === 0 && p.upstream.destroyed)))
      for (const w of waiters.splice(0)) w()
  }

  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    if (mode === 'cut') return client.resetAndDestroy()
    const upstream = connect({ port: targetPort, host: PG_HOST, allowHalfOpen: true })
    const pair = { client, upstream, held: [] as Array<() => void>, heldEver: false }
    pairs.add(pair)
    let clientSpokeLast = false
    const pass = (fn: () => void) => {
      if (mode !== 'hang') return fn()
      pair.heldEver = true
      pair.held.push(fn)
    }
    client.on('data', (chunk) => {
      if (!clientSpokeLast) roundTrips++
      clientSpokeLast = true
      pass(() => upstream.write(chunk))
    })
    upstream.on('data', (chunk) => {
      clientSpokeLast = false
      pass(() => client.write(chunk))
    })
    client.on('end', () => pass(() => upstream.end()))
    upstream.on('end', () => pass(() => client.end()))
    for (const socket of [client, upstream]) {
      socket.on('error', () => {
        client.destroy()
        upstream.destroy()
      })
      socket.on('close', () => {
        if (client.destroyed && upstream.destroyed) pairs.delete(pair)
        settle()
      })
    }
  })
  await new Promise<void>((resolve, reject) =>
    server.listen(0, PG_HOST, resolve).once('error', reject),
  )

  return {
    port: (server.address() as AddressInfo).port,
    cut() {
      mode = 'cut'
      for (const { client, upstream } of pairs) {
        client.resetAndDestroy()
        upstream.destroy()
      }
    },
    hang() {
      mode = 'hang'
    },
    restore() {
      mode = 'open'
      for (const pair of pairs) for (const fn of pair.held.splice(0)) fn()
    },
    roundTrips: () => roundTrips,
    drained: () =>
      new Promise<void>((resolve) => {
        waiters.push(resolve)
        settle()
      }),
    async close() {
      for (const { client, upstream } of pairs) {
        client.destroy()
        upstream.destroy()
      }
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
