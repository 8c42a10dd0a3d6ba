/**
 * PostgresStore id renewal beyond the shared conformance cases: the forwards table and the
 * column it adds to a table made before renewal existed, pruning of forwards past their grace,
 * what count() sees, a load racing a renewal, and bad arguments.
 */
import { randomUUID } from 'node:crypto'
import { StoreError } from '../../lib/store'
import { PostgresStore } from '../../entries/postgres'
import { newChange } from '../store-conformance'
import { dropSchema, makePool, testSchema } from '../support/postgres'

const schema = testSchema('renew')
const pool = makePool()
let tables = 0
const nextTable = () => `sessions_${tables++}`
const LONG_GRACE = 10 * 60_000

afterAll(async () => {
  await dropSchema(schema)
  await pool.end()
})

async function created(store: PostgresStore, userId: string | null = null): Promise<string> {
  const id = randomUUID()
  expect(await store.save(id, newChange({ set: { cart: '["tea"]' }, userId }))).toEqual({
    ok: true,
    version: 1,
  })
  return id
}

/** The table as the store made it before renewal existed: no renewed_at, no forwards table. */
async function oldShapeTable(table: string, id: string): Promise<void> {
  await pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`)
  await pool.query(`CREATE TABLE "${schema}"."${table}" (
    id text PRIMARY KEY, data jsonb NOT NULL, version bigint NOT NULL,
    created_at timestamptz NOT NULL, expires_at timestamptz NOT NULL,
    idle_timeout bigint NOT NULL, cookie jsonb NOT NULL, user_id text)`)
  await pool.query(
    `INSERT INTO "${schema}"."${table}" VALUES ($1, '{"cart": "[\\"tea\\"]"}', 3, now(),
      now() + interval '1 hour', 3600000, '{}', 'ada')`,
    [id],
  )
}

describe('PostgresStore renewal: the table', () => {
  it('adds renewed_at and the forwards table to a table made before renewal, keeping its sessions', async () => {
    const table = nextTable()
    const oldId = randomUUID()
    await oldShapeTable(table, oldId)
    // Two stores starting at once both run the (idempotent) change.
    const [store, other] = [0, 1].map(() => new PostgresStore({ pool, schema, table }))
    const [before] = await Promise.all([store!.load(oldId), other!.count()])
    expect(before).toMatchObject({ version: 3, userId: 'ada', data: { cart: '["tea"]' } })
    expect(before?.renewedAt).toBeUndefined()

    const newId = randomUUID()
    expect(await store!.renew(oldId, newId, { now: Date.now(), graceMs: LONG_GRACE })).toEqual({
      ok: true,
    })
    expect(await other!.load(oldId)).toMatchObject({ renewedTo: newId, version: 3 })
    const { rows } = await pool.query(
      `SELECT column_name FROM information_schema.columns
       WHERE table_schema = $1 AND table_name = $2 ORDER BY column_name`,
      [schema, `${table}_renewals`],
    )
    expect(rows.map((row: { column_name: string }) => row.column_name)).toEqual([
      'id',
      'renewed_to',
      'until',
    ])
  })

  it('with createTable: false, names the missing column of a table made before renewal', async () => {
    const table = nextTable()
    await oldShapeTable(table, randomUUID())
    const store = new PostgresStore({ pool, schema, table, createTable: false })
    const err = (await store.load(randomUUID()).catch((e: unknown) => e)) as StoreError
    expect(err).toBeInstanceOf(StoreError)
    expect(err.message).toMatch(/renewed_at.*does not exist.*createTable: true/)
  })
})

describe('PostgresStore renewal: forwards', () => {
  it('counts the renewed session once, and prune() deletes forwards past their grace only', async () => {
    const table = nextTable()
    const store = new PostgresStore({ pool, schema, table })
    const [a, b] = [await created(store), await created(store)]
    const [a2, b2] = [randomUUID(), randomUUID()]
    expect(await store.renew(a, a2, { now: Date.now(), graceMs: 0 })).toEqual({ ok: true })
    expect(await store.renew(b, b2, { now: Date.now(), graceMs: LONG_GRACE })).toEqual({
      ok: true,
    })
    expect(await store.count()).toBe(2)

    // No session row expired: prune deletes none, only the forward whose grace has ended.
    expect(await store.prune()).toBe(0)
    const { rows } = await pool.query(`SELECT id FROM "${schema}"."${table}_renewals"`)
    expect(rows).toEqual([{ id: b }])
    expect(await store.load(a)).toBeNull()
    expect(await store.load(b)).toMatchObject({ renewedTo: b2 })
    expect(await store.load(a2)).toMatchObject({ data: { cart: '["tea"]' } })
  })

  it('clear() removes forwards too: an old id reaches nothing afterwards', async () => {
    const store = new PostgresStore({ pool, schema, table: nextTable() })
    const oldId = await created(store)
    await store.renew(oldId, randomUUID(), { now: Date.now(), graceMs: LONG_GRACE })
    await store.clear()
    expect(await store.load(oldId)).toBeNull()
    expect(await store.save(oldId, newChange({ set: { x: '1' }, expectedVersion: 1 }))).toEqual({
      ok: false,
      reason: 'gone',
    })
  })

  /**
   * A renewal of `oldId` to `newId` as renew() makes it, in a transaction that holds the old row
   * until `commit()`, once `waiter` is seen waiting for that row.
   */
  async function heldRenewal(table: string, oldId: string, newId: string) {
    const client = await pool.connect()
    await client.query('BEGIN')
    await client.query(`SELECT 1 FROM "${schema}"."${table}" WHERE id = $1 FOR UPDATE`, [oldId])
    return {
      /** Resolves once a statement on the table waits for the row lock: the event itself. */
      async waiter(): Promise<void> {
        for (;;) {
          const { rows } = await pool.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity
             WHERE wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%'`,
            [`"${schema}"."${table}"`],
          )
          if ((rows[0] as { n: number }).n > 0) return
          await new Promise((resolve) => setImmediate(resolve))
        }
      },
      async commit(): Promise<void> {
        try {
          await client.query(
            `INSERT INTO "${schema}"."${table}"
               SELECT $2, data, version, created_at, expires_at, idle_timeout, cookie, user_id,
                 now()
               FROM "${schema}"."${table}" WHERE id = $1`,
            [oldId, newId],
          )
          await client.query(`DELETE FROM "${schema}"."${table}" WHERE id = $1`, [oldId])
          await client.query(
            `INSERT INTO "${schema}"."${table}_renewals"
               VALUES ($1, $2, now() + interval '1 hour')`,
            [oldId, newId],
          )
          await client.query('COMMIT')
        } finally {
          client.release()
        }
      },
    }
  }

  it('a touching load that waited for a renewal holding the row finds the renewed session', async () => {
    const table = nextTable()
    const store = new PostgresStore({ pool, schema, table })
    const oldId = await created(store)
    const newId = randomUUID()
    const renewal = await heldRenewal(table, oldId, newId)
    const loading = store.load(oldId, { touchAt: Date.now() })
    await renewal.waiter()
    await renewal.commit()
    expect(await loading).toMatchObject({ renewedTo: newId, data: { cart: '["tea"]' } })
  })

  it('a destroy through an old id that waited for another renewal destroys the session there', async () => {
    const table = nextTable()
    const store = new PostgresStore({ pool, schema, table })
    const first = await created(store)
    const second = randomUUID()
    const third = randomUUID()
    await store.renew(first, second, { now: Date.now(), graceMs: LONG_GRACE })
    const renewal = await heldRenewal(table, second, third)
    const destroying = store.destroy(first)
    await renewal.waiter()
    await renewal.commit()
    await destroying
    expect(await store.load(third)).toBeNull()
    expect(await store.load(first)).toBeNull()
    expect(await store.count()).toBe(0)
  })

  it('rejects bad ids and options with a TypeError, changing nothing', async () => {
    const store = new PostgresStore({ pool, schema, table: nextTable() })
    const oldId = await created(store)
    await expect(
      store.renew(oldId, '../x', { now: Date.now(), graceMs: LONG_GRACE }),
    ).rejects.toThrow(/renew needs valid session ids/)
    await expect(
      store.renew(oldId, randomUUID(), { now: Date.now(), graceMs: -1 }),
    ).rejects.toThrow(/graceMs as ms >= 0, got now \d+, graceMs -1/)
    await expect(
      store.renew(oldId, randomUUID(), { now: Number.NaN, graceMs: 1000 }),
    ).rejects.toThrow(/needs now in epoch ms/)
    expect(await store.load(oldId)).toMatchObject({ version: 1, data: { cart: '["tea"]' } })
    expect((await store.load(oldId))?.renewedTo).toBeUndefined()
  })
})
