/**
 * What a LayeredStore (Redis over PostgreSQL) sends per call, counted on a redis-server this
 * file starts (MONITOR) and on the store's own PostgreSQL connections: a read served by hot is
 * one Redis command and no SQL, a save of a session just read is one Redis command after cold's
 * statement; and, with an injected clock, the idle expiry stays exact while cold hears of it
 * only once hot has run far enough ahead.
 */
import { randomUUID } from 'node:crypto'
import Redis from 'ioredis'
import type pg from 'pg'
import { LayeredStore } from '../../entries/layered'
import { PostgresStore } from '../../entries/postgres'
import { RedisStore } from '../../entries/redis'
import { newChange } from '../store-conformance'
import { useFakeDate } from '../support/clock'
import { dropSchema, makePool, testSchema } from '../support/postgres'
import { addressOf } from '../support/redis-clients'
import { startRedisServer, testPrefix, type RedisProcess } from '../support/redis-server'

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const schema = testSchema('layered_rt')
/** Statements sent on the stores' PostgreSQL connections, in order. */
const statements: string[] = []
const pool = counted(makePool({ max: 2 }))
/** A pool of its own, to look at cold without being counted. */
const lookPool = makePool({ max: 1 })
let server: RedisProcess
let client: Redis
let admin: Redis
let monitor: Redis
/** Commands the store's client sent, as MONITOR reported them. */
const seen: string[][] = []
let tables = 0

function counted(target: pg.Pool): pg.Pool {
  target.on('connect', (connection) => {
    const query = connection.query.bind(connection) as (...args: unknown[]) => unknown
    ;(connection as unknown as { query: (...args: unknown[]) => unknown }).query = (
      ...args: unknown[]
    ) => {
      const first = args[0] as string | { text: string }
      statements.push(typeof first === 'string' ? first : first.text)
      return query(...args)
    }
  })
  return target
}

beforeAll(async () => {
  server = await startRedisServer()
  client = new Redis(server.url)
  admin = new Redis(server.url)
  // Both connections' ready checks (INFO) reach the server before MONITOR starts: a command
  // line that arrives in the same packet as MONITOR's OK is taken by ioredis for a reply
  // ("Command queue state error").
  await Promise.all([client.ping(), admin.ping()])
  monitor = await client.monitor()
  const addr = await addressOf(client)
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source === addr) seen.push(args)
  })
})
afterAll(async () => {
  monitor.disconnect()
  admin.disconnect()
  client.disconnect()
  await server.stop()
  await pool.end()
  await lookPool.end()
  await dropSchema(schema)
})

function stores(hotTtl = 5 * MINUTE) {
  const prefix = testPrefix('lrt')
  const table = `sessions_${tables++}`
  const cold = new PostgresStore({ pool, schema, table, timeout: 60_000 })
  const look = new PostgresStore({ pool: lookPool, schema, table, timeout: 60_000 })
  const store = new LayeredStore({
    hot: new RedisStore({ client, prefix, timeout: 60_000 }),
    cold,
    hotTtl,
  })
  return { store, look, prefix }
}

/**
 * The Redis commands (by name) and SQL statements the store sent while `work` ran: between two
 * ECHO marks on its Redis connection, and by statement count on its pool.
 */
async function during(
  work: () => Promise<unknown>,
): Promise<{ redis: string[]; sql: string[]; commands: string[][] }> {
  const mark = randomUUID()
  await client.echo(`start-${mark}`)
  const before = statements.length
  await work()
  const sql = statements.slice(before)
  await client.echo(`end-${mark}`)
  while (!seen.some((args) => args[1] === `end-${mark}`))
    await new Promise((resolve) => setTimeout(resolve, 10))
  const start = seen.findIndex((args) => args[1] === `start-${mark}`)
  const end = seen.findIndex((args) => args[1] === `end-${mark}`)
  const commands = seen.slice(start + 1, end)
  return { redis: commands.map((args) => args[0]!.toLowerCase()), sql, commands }
}

/** Resolves once `check` holds, asking again on each turn of the event loop's timers. */
async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 10))
}

describe('LayeredStore (Redis over PostgreSQL) round trips', () => {
  it('serves a read from hot with one Redis command and no SQL, read after read', async () => {
    const { store, look } = stores()
    const id = randomUUID()
    const now = Date.now()
    await store.save(id, newChange({ set: { a: '1' }, createdAt: now, idleTimeout: HOUR }))
    await store.load(id, { touchAt: now }) // the scripts are known to the server from here on
    for (let i = 1; i <= 5; i++) {
      const touchAt = now + i * 1000
      let record: Awaited<ReturnType<typeof store.load>> = null
      const sent = await during(async () => {
        record = await store.load(id, { touchAt, absoluteTimeout: 24 * HOUR })
      })
      expect(sent).toMatchObject({ redis: ['evalsha'], sql: [] })
      // The served expiry is exact, and stays so for a load without a touch.
      expect(record!).toMatchObject({ version: 1, data: { a: '1' }, expiresAt: touchAt + HOUR })
      expect((await store.load(id))?.expiresAt).toBe(touchAt + HOUR)
    }
    // Cold, a few seconds behind, was not written.
    expect((await look.load(id))?.expiresAt).toBe(now + HOUR)
  })

  it('saves a session it just read with one cold statement and one Redis command', async () => {
    const { store, look } = stores()
    const id = randomUUID()
    await store.save(id, newChange({ set: { n: '0' } }))
    for (let i = 1; i <= 3; i++) {
      const record = await store.load(id, { touchAt: Date.now() })
      const sent = await during(() =>
        store.save(id, newChange({ set: { n: String(i) }, expectedVersion: record!.version })),
      )
      expect(sent.redis).toEqual(['evalsha'])
      expect(sent.sql).toHaveLength(1)
      expect(await store.load(id)).toMatchObject({ version: i + 1, data: { n: String(i) } })
      expect(await look.load(id)).toMatchObject({ version: i + 1, data: { n: String(i) } })
    }
  })

  it('a save over a hot entry changed since its read still lands, by compare-and-set', async () => {
    const { store, prefix } = stores()
    const id = randomUUID()
    await store.save(id, newChange({ set: { n: '0' } }))
    await store.load(id, { touchAt: Date.now() }) // the hot entry this store saw
    // Another writer rewrites the entry as it is, so only its version in hot moves on.
    const hot = new RedisStore({ client: admin, prefix, timeout: 60_000 })
    const raw = (await hot.load(id))!
    const again = { ...raw, expectedVersion: raw.version, set: raw.data, unset: [], userId: null }
    expect(await hot.save(id, again)).toMatchObject({ ok: true, version: raw.version + 1 })
    const sent = await during(() =>
      store.save(id, newChange({ set: { n: '1' }, expectedVersion: 1 })),
    )
    // The compare-and-set on the version it saw fails; the one on the answer lands.
    expect(sent.redis).toEqual(['evalsha', 'evalsha'])
    expect(await store.load(id, { touchAt: Date.now() })).toMatchObject({
      version: 2,
      data: { n: '1' },
    })
  })
})

describe('LayeredStore (Redis over PostgreSQL) idle expiry, on an injected clock', () => {
  const clock = useFakeDate()
  const idleTimeout = 10 * MINUTE

  /** A session read every 3 minutes from hot, 9 times: last read at +27 min. */
  async function readFromHot() {
    const { store, look, prefix } = stores(HOUR) // hot serves it for the whole run
    const id = randomUUID()
    const start = clock.now()
    await store.save(
      id,
      newChange({ createdAt: start, expiresAt: start + idleTimeout, idleTimeout }),
    )
    const before = statements.length
    for (let i = 1; i <= 9; i++) {
      clock.advance(3 * MINUTE)
      const record = await store.load(id, { touchAt: Date.now(), absoluteTimeout: 24 * HOUR })
      expect(record?.expiresAt).toBe(Date.now() + idleTimeout)
      // Cold is never more than min(hotTtl, idleTimeout / 2) behind, once its touch has landed.
      await until(async () => (await look.load(id))!.expiresAt >= record!.expiresAt - 5 * MINUTE)
    }
    // Touched at +6, +12, +18 and +24 minutes: when hot ran 5 minutes or more ahead of it.
    expect(statements.slice(before)).toHaveLength(4)
    expect((await look.load(id))?.expiresAt).toBe(start + 34 * MINUTE)
    return { store, look, id, last: Date.now(), hotKey: prefix + id }
  }

  it('ends a session idleTimeout after its last read, in hot and in cold', async () => {
    const { store, look, id, last } = await readFromHot()
    clock.advance(idleTimeout - 1)
    expect((await store.load(id))?.expiresAt).toBe(last + idleTimeout)
    clock.advance(1)
    expect(await store.load(id, { touchAt: Date.now() })).toBeNull()
    expect(await look.load(id)).toBeNull()
    expect(await store.load(id)).toBeNull()
  })

  it('keeps the session in cold past its last read, for a read after hot lost it', async () => {
    const { store, id, last, hotKey } = await readFromHot()
    clock.advance(6 * MINUTE) // past the expiry cold held after the read before the last
    await admin.del(hotKey) // hot loses the entry, as an eviction would
    const record = await store.load(id, { touchAt: Date.now() })
    expect(record?.expiresAt).toBe(last + 6 * MINUTE + idleTimeout)
    expect(await admin.exists(hotKey)).toBe(1) // and refilled hot
  })

  it('asks cold again once hot has served an entry for hotTtl', async () => {
    const { store, look } = stores(5 * MINUTE)
    const id = randomUUID()
    const start = clock.now()
    await store.save(
      id,
      newChange({
        set: { cart: '"five items"', otp: '"123456"' },
        cookie: { sameSite: 'strict' },
        keyExpires: { otp: start + HOUR },
        userId: 'user-1',
        createdAt: start,
        expiresAt: start + idleTimeout,
        idleTimeout,
      }),
    )
    clock.advance(4 * MINUTE)
    expect((await during(() => store.load(id, { touchAt: Date.now() }))).sql).toEqual([])
    clock.advance(2 * MINUTE) // 6 minutes since it was written
    const sent = await during(() => store.load(id, { touchAt: Date.now() }))
    expect(sent.sql).toHaveLength(1) // cold's load with its touch
    // The hot read, then the refill, by compare-and-set on the entry that read saw. Cold still
    // holds the version hot has, so the refill extends the entry without sending its data.
    expect(sent.redis).toEqual(['evalsha', 'evalsha'])
    expect(sent.commands[1]!.join(' ')).not.toContain('five items')
    expect((await look.load(id))?.expiresAt).toBe(Date.now() + idleTimeout)
    clock.advance(MINUTE)
    const next = await during(() => store.load(id, { touchAt: Date.now() }))
    expect(next.sql).toEqual([])
    // Served from hot as cold holds it: data, cookie overrides, per-key expiries and owner.
    const { renewedAt: _, ...inCold } = (await look.load(id))!
    expect(await store.load(id)).toEqual({ ...inCold, expiresAt: Date.now() + idleTimeout })
    expect(inCold).toMatchObject({
      version: 1,
      data: { cart: '"five items"', otp: '"123456"' },
      cookie: { sameSite: 'strict' },
      keyExpires: { otp: start + HOUR },
      userId: 'user-1',
    })
  })

  /** A session saved through a layered store with a 5-minute hotTtl, and cold looked at alone. */
  async function savedWith(set: Record<string, string>) {
    const { store, look } = stores(5 * MINUTE)
    const id = randomUUID()
    const start = clock.now()
    const times = { createdAt: start, expiresAt: start + idleTimeout, idleTimeout }
    await store.save(id, newChange({ set, ...times }))
    return { store, look, id, start, times }
  }

  it('refills hot whole when cold holds a new session under the id, at the same version number', async () => {
    const { store, look, id, start, times } = await savedWith({ n: '"old"' })
    // The session ends in cold alone, and another is created there under the same id.
    await look.destroy(id)
    const again = { ...times, createdAt: start + 1, expiresAt: start + 1 + idleTimeout }
    expect(await look.save(id, newChange({ set: { n: '"new"' }, ...again }))).toEqual({
      ok: true,
      version: 1,
    })
    clock.advance(6 * MINUTE) // past hotTtl: the read checks cold
    expect(await store.load(id, { touchAt: Date.now() })).toMatchObject({
      version: 1,
      createdAt: start + 1,
      data: { n: '"new"' },
    })
    expect(await store.load(id)).toMatchObject({ createdAt: start + 1, data: { n: '"new"' } })
  })

  it('refills hot with the data cold holds when cold moved on past the version hot has', async () => {
    const { store, look, id, times } = await savedWith({ n: '1' })
    // A writer that reached cold but not this hot layer (a process cut off from it).
    expect(
      await look.save(id, newChange({ set: { n: '2' }, expectedVersion: 1, ...times })),
    ).toEqual({ ok: true, version: 2 })
    clock.advance(MINUTE)
    expect(await store.load(id, { touchAt: Date.now() })).toMatchObject({ data: { n: '1' } })
    clock.advance(5 * MINUTE) // past hotTtl: the read checks cold
    expect(await store.load(id, { touchAt: Date.now() })).toMatchObject({
      version: 2,
      data: { n: '2' },
    })
    let served: Awaited<ReturnType<typeof store.load>> = null
    const sent = await during(async () => {
      served = await store.load(id, { touchAt: Date.now() })
    })
    // Hot serves the new version.
    expect(sent).toMatchObject({ redis: ['evalsha'], sql: [] })
    expect(served).toMatchObject({ version: 2, data: { n: '2' } })
  })
})
