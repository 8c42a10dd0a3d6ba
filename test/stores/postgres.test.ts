/**
 * PostgresStore on the machine's PostgreSQL, in a schema of this run's own: the Store contract,
 * the middleware's concurrency guarantees, the table it creates, one statement per call,
 * corrupt rows, bad options, pruning, and saves that must not land after their deadline.
 */
import { randomUUID } from 'node:crypto'
import { StoreError } from '../../lib/store'
import { PostgresStore } from '../../entries/postgres'
import { describeMiddlewareOverStore } from '../middleware-store-suite'
import { describeStore, newChange } from '../store-conformance'
import { dropSchema, makePool, testSchema } from '../support/postgres'

const schema = testSchema('store')
const pool = makePool()
let tables = 0
const nextTable = () => `sessions_${tables++}`

afterAll(async () => {
  await dropSchema(schema)
  await pool.end()
})

describeStore(
  'PostgresStore',
  async () => new PostgresStore({ pool, schema, table: nextTable() }),
  {
    lifecycle: { atLoad: 'absolute', prune: (store) => (store as PostgresStore).prune() },
  },
)

describeMiddlewareOverStore(
  'PostgresStore',
  // A store bound far above what a loaded machine needs: the suite is about merging.
  async () => new PostgresStore({ pool, schema, table: nextTable(), timeout: 60_000 }),
)
describeMiddlewareOverStore(
  'PostgresStore',
  async () => new PostgresStore({ pool, schema, table: nextTable() }),
  { maxSessionsPerUser: 3, touchAfter: 60_000 },
)
describeMiddlewareOverStore(
  'PostgresStore',
  // Generous for the same reason: a loaded machine must not turn slow statements into 503s.
  async () => new PostgresStore({ pool, schema, table: nextTable(), timeout: 60_000 }),
  { observed: true },
)
// Ids renewed every few requests while 200 run at once: requests straddle renewals.
describeMiddlewareOverStore(
  'PostgresStore',
  async () => new PostgresStore({ pool, schema, table: nextTable(), timeout: 60_000 }),
  { renew: { afterRequests: 15 } },
)

describe('PostgresStore table', () => {
  it('creates one row per session, with data as jsonb a person can read, and indexes on expiry and owner', async () => {
    const table = nextTable()
    const store = new PostgresStore({ pool, schema, table })
    const id = randomUUID()
    await store.save(
      id,
      newChange({
        set: { cart: '{"items":["tea"]}', n: '3' },
        userId: 'ada',
        cookie: { sameSite: 'strict' },
      }),
    )
    const { rows } = await pool.query(
      `SELECT data->>'cart' AS cart, (data->>'cart')::jsonb->'items'->>0 AS first, version, user_id, cookie, expires_at > now() AS live
       FROM "${schema}"."${table}" WHERE id = $1`,
      [id],
    )
    expect(rows).toEqual([
      {
        cart: '{"items":["tea"]}',
        first: 'tea',
        version: '1',
        user_id: 'ada',
        cookie: { sameSite: 'strict' },
        live: true,
      },
    ])
    const indexes = await pool.query(
      `SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 ORDER BY indexname`,
      [schema, table],
    )
    const defs = indexes.rows.map((r: { indexdef: string }) => r.indexdef).join('\n')
    expect(defs).toMatch(/USING btree \(expires_at\)/)
    expect(defs).toMatch(/USING btree \(user_id\) WHERE \(user_id IS NOT NULL\)/)
    expect(defs).toMatch(/UNIQUE INDEX .* \(id\)/)
  })

  it('creates the table once when many stores on separate pools start at the same moment', async () => {
    const table = nextTable()
    const pools = Array.from({ length: 6 }, () => makePool({ max: 1 }))
    try {
      const results = await Promise.all(
        pools.map((p) =>
          new PostgresStore({ pool: p, schema, table }).save(
            randomUUID(),
            newChange({ set: { a: '1' } }),
          ),
        ),
      )
      expect(results.every((r) => r.ok)).toBe(true)
      expect(await new PostgresStore({ pool, schema, table }).count()).toBe(6)
    } finally {
      await Promise.all(pools.map((p) => p.end()))
    }
  })

  it('with createTable: false, names the missing table in a StoreError instead of creating it', async () => {
    const store = new PostgresStore({ pool, schema, table: 'never_created', createTable: false })
    const err = (await store.load(randomUUID()).catch((e: unknown) => e)) as StoreError
    expect(err).toBeInstanceOf(StoreError)
    expect(err.status).toBe(503)
    expect(err.code).toBe('ESCHEMA')
    expect(err.message).toMatch(/"never_created".*createTable: true/)
    const { rows } = await pool.query(`SELECT to_regclass($1) AS t`, [
      `"${schema}"."never_created"`,
    ])
    expect(rows[0].t).toBeNull()
  })

  it('refuses a table of another shape with a StoreError saying so', async () => {
    const table = nextTable()
    await pool.query(
      `CREATE SCHEMA IF NOT EXISTS "${schema}"; CREATE TABLE "${schema}"."${table}" (sid varchar PRIMARY KEY, sess json)`,
    )
    const err = (await new PostgresStore({ pool, schema, table })
      .load(randomUUID())
      .catch((e: unknown) => e)) as StoreError
    expect(err).toBeInstanceOf(StoreError)
    expect(err.message).toMatch(/not a concord-session table/)
  })
})

describe('PostgresStore options', () => {
  it.each([
    [{ pool: undefined }, /pool must be a node-postgres Pool/],
    [{ pool: { query() {}, connect() {} } }, /pool must be a node-postgres Pool/],
    [{ pool, table: 'x"; DROP TABLE users; --' }, /table must be a plain SQL identifier/],
    [{ pool, table: '1abc' }, /table must be a plain SQL identifier/],
    [{ pool, table: 'a'.repeat(60) }, /its index name/],
    [{ pool, schema: 'public.other' }, /schema must be a plain SQL identifier/],
    [{ pool, legacyTable: 'a.b.c' }, /legacyTable must be 'table' or 'schema.table'/],
    [{ pool, legacyTable: 'session; --' }, /legacyTable must be a plain SQL identifier/],
    [{ pool, createTable: 'yes' }, /createTable must be true or false/],
    [{ pool, pruneInterval: 0 }, /pruneInterval must be a positive number of ms or false/],
    [{ pool, timeout: -1 }, /timeout must be a positive number of ms/],
  ])('rejects %p', (options, message) => {
    expect(() => new PostgresStore(options as never)).toThrow(TypeError)
    expect(() => new PostgresStore(options as never)).toThrow(message)
  })
})

describe('PostgresStore with rows it cannot read', () => {
  const table = nextTable()
  let store: PostgresStore
  beforeAll(() => {
    store = new PostgresStore({ pool, schema, table })
  })

  it.each([
    [
      'a value that is not JSON text',
      `data = '{"cart": "{not json"}'`,
      /data->>"cart" is not JSON text/,
    ],
    [
      'a value stored as JSON instead of its text',
      `data = '{"cart": {"items": []}}'`,
      /data->"cart" should be the key's JSON text as a string, found an object/,
    ],
    [
      'data that is not an object',
      `data = '[1]'`,
      /column data should be a JSON object, found an array/,
    ],
    ['cookie that is not an object', `cookie = '"x"'`, /column cookie should be a JSON object/],
    ['a version of 0', `version = 0`, /column version should be a positive integer/],
  ])(
    'answers %s with a StoreError naming the session, and keeps the row',
    async (_what, assignment, message) => {
      const id = randomUUID()
      await store.save(id, newChange({ set: { cart: '{"items":[]}' } }))
      await pool.query(`UPDATE "${schema}"."${table}" SET ${assignment} WHERE id = $1`, [id])
      const err = (await store.load(id).catch((e: unknown) => e)) as StoreError
      expect(err).toBeInstanceOf(StoreError)
      expect(err.code).toBe('ECORRUPT')
      expect(err.message).toContain(`session ${id}`)
      expect(err.message).toMatch(message)
      const { rowCount } = await pool.query(`SELECT 1 FROM "${schema}"."${table}" WHERE id = $1`, [
        id,
      ])
      expect(rowCount).toBe(1)
    },
  )
})

describe('PostgresStore pruning', () => {
  it('prune() deletes expired rows and only those, and says how many', async () => {
    const table = nextTable()
    const store = new PostgresStore({ pool, schema, table, pruneInterval: false })
    const now = Date.now()
    for (let i = 0; i < 3; i++)
      await store.save(randomUUID(), newChange({ createdAt: now - 10_000, expiresAt: now - 1000 }))
    const live = randomUUID()
    await store.save(live, newChange())
    expect(await store.prune()).toBe(3)
    const { rows } = await pool.query(`SELECT id FROM "${schema}"."${table}"`)
    expect(rows).toEqual([{ id: live }])
    expect(await store.prune()).toBe(0)
  })

  it('prunes on its own timer', async () => {
    const table = nextTable()
    const store = new PostgresStore({ pool, schema, table, pruneInterval: 50 })
    try {
      const now = Date.now()
      await store.save(randomUUID(), newChange({ createdAt: now - 10_000, expiresAt: now - 1000 }))
      // Waits for the timer's prune to happen; the bound only stops a broken timer from hanging the test.
      const deadline = Date.now() + 15_000
      let left = 1
      while (left > 0 && Date.now() < deadline) {
        left = (await pool.query(`SELECT 1 FROM "${schema}"."${table}"`)).rowCount ?? 0
        if (left > 0) await new Promise((resolve) => setTimeout(resolve, 25))
      }
      expect(left).toBe(0)
    } finally {
      await store.close()
    }
  })
})
