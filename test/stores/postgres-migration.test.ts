/**
 * Moving from express-session + connect-pg-simple: sessions that real connect-pg-simple wrote
 * through real express-session are read by PostgresStore with `legacyTable`, keep their users
 * signed in, and move into the concord table on their first save.
 */
import { randomUUID } from 'node:crypto'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import session from '../../entries/index'
import { StoreError } from '../../lib/store'
import { PostgresStore } from '../../entries/postgres'
import { newChange } from '../store-conformance'
import { dropSchema, makePool, testSchema } from '../support/postgres'
import { storedId } from '../support/at-rest'

// express-session and connect-pg-simple ship no types of their own; they are used as plain JS here.
const expressSession = require('express-session') as ((
  options: object,
) => express.RequestHandler) & { Store: unknown }
const connectPgSimple = require('connect-pg-simple') as (
  session: unknown,
) => new (options: object) => LegacyStore

interface LegacyStore {
  set(id: string, sess: object, cb: (err?: unknown) => void): void
  get(id: string, cb: (err: unknown, sess?: Record<string, unknown> | null) => void): void
  close(): void
}

const SECRET = 'the same secret in both apps'
const HOUR = 3_600_000
const schema = testSchema('migrate')
// express-session drops a store error once the response is on its way, so a connect that times
// out under load would only show as a missing session later: give connects ample time.
const pool = makePool({ connectionTimeoutMillis: 60_000 })
const PgSession = connectPgSimple(expressSession)
const legacy = new PgSession({
  pool,
  schemaName: schema,
  tableName: 'session',
  createTableIfMissing: true,
  pruneSessionInterval: false,
})
const servers: Server[] = []
let tables = 0

beforeAll(async () => {
  await pool.query(`CREATE SCHEMA "${schema}"`)
})
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  legacy.close()
  await dropSchema(schema)
  await pool.end()
})

async function listen(app: express.Express): Promise<string> {
  const server = app.listen(0, '127.0.0.1')
  servers.push(server)
  await new Promise((resolve) => server.once('listening', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const setLegacy = (id: string, sess: object) =>
  new Promise<void>((resolve, reject) =>
    legacy.set(id, sess, (err) => (err ? reject(err) : resolve())),
  )
const getLegacy = (id: string) =>
  new Promise<unknown>((resolve, reject) =>
    legacy.get(id, (err, sess) => (err ? reject(err) : resolve(sess ?? null))),
  )

/** A session written by real connect-pg-simple, as express-session would hand it over. */
async function legacySession(data: Record<string, unknown>, maxAge = HOUR): Promise<string> {
  const id = randomUUID()
  await setLegacy(id, {
    cookie: {
      originalMaxAge: maxAge,
      expires: new Date(Date.now() + maxAge).toISOString(),
      httpOnly: true,
      path: '/',
    },
    ...data,
  })
  return id
}

const tableOf = new WeakMap<PostgresStore, string>()
function store(): PostgresStore {
  const table = `sessions_${tables++}`
  // Generous bounds: a loaded machine must not turn a slow statement into a failed test.
  const s = new PostgresStore({ pool, schema, table, legacyTable: 'session', timeout: 60_000 })
  tableOf.set(s, table)
  return s
}

const concordRows = async (s: PostgresStore, id: string) =>
  (
    await pool.query(`SELECT data, version FROM "${schema}"."${tableOf.get(s)}" WHERE id = $1`, [
      id,
    ])
  ).rows as Array<{ data: Record<string, string>; version: string }>

describe('switching from express-session + connect-pg-simple', () => {
  it('keeps users signed in with the same cookie name and secret, and moves each session under its keyed hash on its first load', async () => {
    const before = express()
    before.use(
      expressSession({
        store: legacy,
        secret: SECRET,
        resave: false,
        saveUninitialized: false,
        cookie: { maxAge: HOUR },
      }),
    )
    before.post('/login', (req, res) => {
      const s = (req as unknown as { session: Record<string, unknown> }).session
      s.user = { name: 'Ada', roles: ['admin'] }
      s.cart = { items: ['tea'] }
      res.json({ ok: true })
    })
    const login = await fetch(`${await listen(before)}/login`, { method: 'POST' })
    await login.text() // the body's last byte follows express-session's store write
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!
    const id = decodeURIComponent(cookie.slice('connect.sid='.length)).slice(2).split('.')[0]!
    expect(await getLegacy(id)).toMatchObject({ user: { name: 'Ada' } })

    const s = store()
    const after = express()
    after.use(
      session(s, { secret: SECRET, cookie: { maxAge: HOUR }, rolling: true, saveTimeout: 60_000 }),
    )
    after.get('/me', (req, res) =>
      res.json({
        id: req.session.id,
        user: req.session.user ?? null,
        cart: req.session.cart ?? null,
      }),
    )
    after.post('/cart/add/:item', (req, res) => {
      req.session.cart!.items.push(req.params.item as string)
      res.json({ ok: true })
    })
    const base = await listen(after)

    const me = await fetch(`${base}/me`, { headers: { cookie } })
    expect(me.status).toBe(200)
    expect(await me.json()).toEqual({
      id,
      user: { name: 'Ada', roles: ['admin'] },
      cart: { items: ['tea'] },
    })
    // The first read moved it into the concord table under the keyed hash of its id.
    const stored = storedId(id, SECRET)
    expect(await concordRows(s, id)).toEqual([])
    expect(await getLegacy(id)).toBeNull()
    expect(await concordRows(s, stored)).toEqual([
      {
        data: { user: '{"name":"Ada","roles":["admin"]}', cart: '{"items":["tea"]}' },
        version: '1',
      },
    ])

    expect(
      (await fetch(`${base}/cart/add/scones`, { method: 'POST', headers: { cookie } })).status,
    ).toBe(200)
    expect(await concordRows(s, id)).toEqual([])
    expect(await concordRows(s, stored)).toEqual([
      {
        data: { user: '{"name":"Ada","roles":["admin"]}', cart: '{"items":["tea","scones"]}' },
        version: '2',
      },
    ])
    expect(await getLegacy(id)).toBeNull()

    const again = await fetch(`${base}/me`, { headers: { cookie } })
    expect(await again.json()).toEqual({
      id,
      user: { name: 'Ada', roles: ['admin'] },
      cart: { items: ['tea', 'scones'] },
    })
  })
})

describe('PostgresStore reading connect-pg-simple sessions', () => {
  it('reads a legacy session as version 1, with its data as JSON text and its maxAge as idle period', async () => {
    const s = store()
    const id = await legacySession({ n: 1, nested: { a: [1, 2] } }, 2 * HOUR)
    const record = await s.load(id)
    expect(record).toMatchObject({
      data: { n: '1', nested: '{"a":[1,2]}' },
      cookie: { originalMaxAge: 2 * HOUR },
      idleTimeout: 2 * HOUR,
      version: 1,
    })
    expect(record!.expiresAt).toBeGreaterThan(Date.now() + 2 * HOUR - 60_000)
    expect(record!.userId).toBeUndefined()
  })

  it("touches a legacy session on load, and the touch reaches connect-pg-simple's expire column", async () => {
    const s = store()
    const id = await legacySession({ n: 1 }, 10_000)
    const touchAt = Date.now() + 5000
    expect((await s.load(id, { touchAt }))?.expiresAt).toBe(touchAt + 10_000)
    const { rows } = await pool.query(
      `SELECT (extract(epoch FROM expire::timestamptz) * 1000)::bigint AS ms FROM "${schema}".session WHERE sid = $1`,
      [id],
    )
    expect(Number(rows[0].ms)).toBe(touchAt + 10_000)
  })

  it('keeps the version check across the move: of two first saves, one wins and one gets a conflict', async () => {
    const s = store()
    const id = await legacySession({ n: 0, keep: 'me' })
    const results = await Promise.all([
      s.save(id, newChange({ set: { n: '1' }, expectedVersion: 1 })),
      s.save(id, newChange({ set: { n: '2' }, expectedVersion: 1 })),
    ])
    expect(results.filter((r) => r.ok)).toEqual([{ ok: true, version: 2 }])
    const lost = results.find((r) => !r.ok)
    if (!lost || lost.ok || lost.reason !== 'conflict')
      throw new Error(`expected a conflict, got ${JSON.stringify(results)}`)
    expect(lost.current.version).toBe(2)
    expect(lost.current.data.keep).toBe('"me"')
  })

  it('treats a create on a legacy id as a conflict carrying the legacy session', async () => {
    const s = store()
    const id = await legacySession({ a: 1 })
    expect(await s.save(id, newChange({ set: { a: '2' } }))).toMatchObject({
      ok: false,
      reason: 'conflict',
      current: { version: 1, data: { a: '1' } },
    })
    const user = `user-${randomUUID()}`
    expect(await s.save(id, newChange({ userId: user, expectedVersion: 1 }))).toEqual({
      ok: true,
      version: 2,
    })
    expect(await s.listByUser(user)).toEqual([id])
    expect((await s.load(id))?.data).toEqual({ a: '1' })
  })

  it('applies a save onto what the row holds now, if the old app rewrote it since the load', async () => {
    const s = store()
    const id = await legacySession({ a: 1 })
    await s.load(id)
    await setLegacy(id, {
      cookie: { originalMaxAge: HOUR, expires: new Date(Date.now() + HOUR).toISOString() },
      a: 1,
      fromOldApp: true,
    })
    expect(
      await s.save(id, newChange({ set: { b: '2' }, unset: ['a'], expectedVersion: 1 })),
    ).toEqual({ ok: true, version: 2 })
    expect((await s.load(id))?.data).toEqual({ fromOldApp: 'true', b: '2' })
  })

  it('counts, destroys and clears legacy sessions too, and prunes expired ones', async () => {
    await pool.query(`DELETE FROM "${schema}".session`)
    const s = store()
    const [a, b] = [await legacySession({ a: 1 }), await legacySession({ b: 1 })]
    await s.save(randomUUID(), newChange())
    expect(await s.count()).toBe(3)
    await s.destroy(a)
    expect(await s.load(a)).toBeNull()
    expect(await getLegacy(a)).toBeNull()
    expect(await s.count()).toBe(2)
    await pool.query(
      `UPDATE "${schema}".session SET expire = now() - interval '1 minute' WHERE sid = $1`,
      [b],
    )
    expect(await s.count()).toBe(1)
    expect(await s.prune()).toBe(1)
    await s.clear()
    expect(await s.count()).toBe(0)
  })

  it('names the session when a legacy row is not a session object', async () => {
    const s = store()
    const id = randomUUID()
    await pool.query(
      `INSERT INTO "${schema}".session (sid, sess, expire) VALUES ($1, '[1, 2]', now() + interval '1 hour')`,
      [id],
    )
    const err = (await s.load(id).catch((e: unknown) => e)) as StoreError
    expect(err).toBeInstanceOf(StoreError)
    expect(err.message).toContain(
      `session ${id} holds data it cannot read: the connect-pg-simple session is not a session object`,
    )
  })
})

declare module '../../lib/session.js' {
  interface SessionData {
    user: { name: string; roles: string[] }
    cart: { items: string[] }
  }
}
