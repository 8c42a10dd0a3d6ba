/**
 * PostgresStore when PostgreSQL is unreachable or slow, played with a TCP proxy this file owns
 * (the machine's server is never stopped), and saves held up past their deadline by a lock:
 * calls fail within a bounded time with a 503 StoreError, the process carries on, calls work
 * again once the database is back, and a save answered with an error never lands later.
 */
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { StoreError } from '../../lib/store'
import { PostgresStore } from '../../entries/postgres'
import { newChange } from '../store-conformance'
import {
  PG_URL,
  dropSchema,
  makePool,
  startProxy,
  testSchema,
  type CuttableProxy,
} from '../support/postgres'

const schema = testSchema('failure')
const direct = makePool()
const pools: pg.Pool[] = [direct]
const proxies: CuttableProxy[] = []
const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => unhandled.push(reason)
let tables = 0

beforeAll(() => {
  process.on('unhandledRejection', onUnhandled)
})
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled)
  for (const proxy of proxies) await proxy.close()
  await dropSchema(schema)
  await Promise.all(pools.map((p) => p.end().catch(() => {})))
})
afterEach(() => {
  expect(unhandled).toEqual([])
})

const TIMEOUT = 1000
const poolUrl = (port: number) => Object.assign(new URL(PG_URL), { port: String(port) }).toString()
/** Far more than TIMEOUT: a bound that a loaded machine cannot cross, not a measurement. */
const BOUND = TIMEOUT + 9000

async function proxied(): Promise<{ store: PostgresStore; proxy: CuttableProxy; table: string }> {
  const proxy = await startProxy()
  proxies.push(proxy)
  const pool = makePool({ port: proxy.port, connectionTimeoutMillis: TIMEOUT, max: 4 })
  pools.push(pool)
  const table = `sessions_${tables++}`
  return { store: new PostgresStore({ pool, schema, table, timeout: TIMEOUT }), proxy, table }
}

async function failure(call: () => Promise<unknown>): Promise<StoreError> {
  const started = Date.now()
  const err = await call().then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(StoreError)
  expect((err as StoreError).status).toBe(503)
  expect(Date.now() - started).toBeLessThan(BOUND)
  return err as StoreError
}

/** Retries `call` until it succeeds (the database is back), for at most 20 s. */
async function eventually<T>(call: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 20_000
  for (;;) {
    try {
      return await call()
    } catch (err) {
      if (Date.now() > deadline) throw err
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

/** Waits until no other backend is running a statement on `table` (a discarded save has finished). */
async function idle(table: string): Promise<void> {
  for (;;) {
    const { rowCount } = await direct.query(
      `SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state = 'active' AND query LIKE $1`,
      [`%"${schema}"."${table}"%`],
    )
    if (rowCount === 0) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('PostgresStore round trips', () => {
  it('costs one round trip for a load with its touch and one for a save', async () => {
    const { store, proxy } = await proxied()
    const id = randomUUID()
    await store.save(id, newChange({ set: { a: '1' } })) // the first call also creates the table
    let before = proxy.roundTrips()
    const record = await store.load(id, { touchAt: Date.now() })
    expect(proxy.roundTrips() - before).toBe(1)
    before = proxy.roundTrips()
    await store.save(id, newChange({ set: { a: '2' }, expectedVersion: record!.version }))
    expect(proxy.roundTrips() - before).toBe(1)
    before = proxy.roundTrips()
    const stale = await store.save(id, newChange({ set: { a: '3' }, expectedVersion: 1 }))
    expect(stale).toMatchObject({
      ok: false,
      reason: 'conflict',
      current: { version: 2, data: { a: '2' } },
    })
    expect(proxy.roundTrips() - before).toBe(1)
  })
})

describe('PostgresStore with the database unreachable', () => {
  it('fails every call with a 503 while connections are reset and refused, and recovers', async () => {
    const { store, proxy } = await proxied()
    const id = randomUUID()
    await store.save(id, newChange({ set: { n: '1' } }))
    proxy.cut()
    await failure(() => store.load(id))
    await failure(() => store.save(id, newChange({ set: { n: '2' }, expectedVersion: 1 })))
    await failure(() => store.destroy(id))
    await failure(() => store.count())
    proxy.restore()
    expect((await eventually(() => store.load(id)))?.data).toEqual({ n: '1' })
    expect(await store.save(id, newChange({ set: { n: '2' }, expectedVersion: 1 }))).toEqual({
      ok: true,
      version: 2,
    })
  })

  it('fails within its timeout while the database hangs, and a save it failed does not land when it resumes', async () => {
    const { store, proxy, table } = await proxied()
    const id = randomUUID()
    await store.save(id, newChange({ set: { n: '1' } }))
    proxy.hang()
    const saves = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        failure(() =>
          store.save(id, newChange({ set: { n: String(10 + i) }, expectedVersion: 1 })),
        ),
      ),
    )
    for (const err of saves) expect(err.code).toBe('ETIMEDOUT')
    await failure(() => store.load(id))
    proxy.restore()
    await proxy.drained() // every held statement has reached the server and been answered
    await idle(table)
    const record = await eventually(() => store.load(id))
    expect(record).toMatchObject({ version: 1, data: { n: '1' } })
  })

  it('does not crash when idle connections of a pool without an error listener are cut', async () => {
    const proxy = await startProxy()
    proxies.push(proxy)
    const pool = new pg.Pool({
      connectionString: poolUrl(proxy.port),
      max: 3,
      connectionTimeoutMillis: TIMEOUT,
    })
    pools.push(pool)
    const store = new PostgresStore({
      pool,
      schema,
      table: `sessions_${tables++}`,
      timeout: TIMEOUT,
    })
    const id = randomUUID()
    await Promise.all([store.save(id, newChange()), store.count(), store.count()]) // three idle connections
    expect(pool.idleCount).toBeGreaterThan(1) // so the pool reports more than the one error awaited below
    const errors = new Promise<void>((resolve) => pool.once('error', () => resolve()))
    proxy.cut()
    await errors // the pool reported the dropped connections, and nothing threw
    proxy.restore()
    expect(await eventually(() => store.load(id))).not.toBeNull()
  })

  it('answers with a 503 when the database is down at start-up, then creates its table once it is up', async () => {
    const { store, proxy } = await proxied()
    proxy.cut()
    const err = await failure(() => store.load(randomUUID()))
    expect(err.message).toMatch(/PostgresStore: load of session/)
    proxy.restore()
    const id = randomUUID()
    expect(await eventually(() => store.save(id, newChange({ set: { a: '1' } })))).toEqual({
      ok: true,
      version: 1,
    })
  })
})

describe('PostgresStore save deadline', () => {
  async function lockedRow(table: string, sql: string, values: unknown[]): Promise<pg.PoolClient> {
    const holder = await direct.connect()
    await holder.query('BEGIN')
    await holder.query(sql.replace('$T', `"${schema}"."${table}"`), values)
    return holder
  }

  it('an update held up by a row lock past its deadline is answered ETIMEDOUT and never lands', async () => {
    const table = `sessions_${tables++}`
    const store = new PostgresStore({ pool: direct, schema, table, timeout: 30_000 })
    const id = randomUUID()
    await store.save(id, newChange({ set: { n: '1' } }))
    const holder = await lockedRow(table, 'SELECT 1 FROM $T WHERE id = $1 FOR UPDATE', [id])
    try {
      const err = await failure(() =>
        store.save(
          id,
          newChange({ set: { n: '2' }, expectedVersion: 1, deadline: Date.now() + 300 }),
        ),
      )
      expect(err.code).toBe('ETIMEDOUT')
    } finally {
      await holder.query('COMMIT')
      holder.release()
    }
    await idle(table)
    expect(await store.load(id)).toMatchObject({ version: 1, data: { n: '1' } })
  })

  it('without a deadline passing, the same held-up update lands once the lock is released', async () => {
    const table = `sessions_${tables++}`
    const store = new PostgresStore({ pool: direct, schema, table, timeout: 30_000 })
    const id = randomUUID()
    await store.save(id, newChange({ set: { n: '1' } }))
    const holder = await lockedRow(table, 'SELECT 1 FROM $T WHERE id = $1 FOR UPDATE', [id])
    const saving = store.save(id, newChange({ set: { n: '2' }, expectedVersion: 1 }))
    await eventuallyWaiting(table)
    await holder.query('COMMIT')
    holder.release()
    expect(await saving).toEqual({ ok: true, version: 2 })
  })

  it('a create held up by another transaction inserting the same id past its deadline never lands', async () => {
    const table = `sessions_${tables++}`
    const store = new PostgresStore({ pool: direct, schema, table, timeout: 30_000 })
    await store.count() // creates the table
    const id = randomUUID()
    const holder = await lockedRow(
      table,
      `INSERT INTO $T (id, data, version, created_at, expires_at, idle_timeout, cookie) VALUES ($1, '{}', 1, now(), now() + interval '1 hour', 3600000, '{}')`,
      [id],
    )
    try {
      const err = await failure(() =>
        store.save(id, newChange({ set: { n: '"late"' }, deadline: Date.now() + 300 })),
      )
      expect(err.code).toBe('ETIMEDOUT')
    } finally {
      await holder.query('ROLLBACK') // the way is clear: the held-up insert goes ahead, then undoes itself
      holder.release()
    }
    await idle(table)
    expect(await store.load(id)).toBeNull()
  })

  it('a save whose deadline has already passed is refused and writes nothing', async () => {
    const table = `sessions_${tables++}`
    const store = new PostgresStore({ pool: direct, schema, table })
    const id = randomUUID()
    await store.save(id, newChange({ set: { n: '1' } }))
    const err = await failure(() =>
      store.save(id, newChange({ set: { n: '2' }, expectedVersion: 1, deadline: Date.now() - 1 })),
    )
    expect(err.code).toBe('ETIMEDOUT')
    const fresh = randomUUID()
    expect(
      (await failure(() => store.save(fresh, newChange({ deadline: Date.now() - 1 })))).code,
    ).toBe('ETIMEDOUT')
    await idle(table)
    expect(await store.load(id)).toMatchObject({ version: 1, data: { n: '1' } })
    expect(await store.load(fresh)).toBeNull()
  })

  /** Waits until a backend is blocked on a lock on `table`. */
  async function eventuallyWaiting(table: string): Promise<void> {
    for (;;) {
      const { rowCount } = await direct.query(
        `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`,
        [`%"${schema}"."${table}"%`],
      )
      if (rowCount) return
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
})
