/**
 * Touch throttling on an express-session store whose touch() moves only its own expiry: real
 * connect-pg-simple (its touch updates the `expire` column, never the stored session) adapted
 * with adaptLegacyStore, on PostgreSQL, with an injected clock. The adapter remembers the
 * expiry it last wrote, so reads every 10 s for 5 minutes with `touchAfter: 60_000` write 5
 * times, not 30 (judged by the stored session alone, every read past the first minute would
 * write), and the `expire` column never falls more than `touchAfter` behind the exact expiry.
 */
import express from 'express'
import request from 'supertest'
import session from '../../entries/index'
import { adaptLegacyStore } from '../../entries/express-session'
import type { LegacyStore } from '../../lib/compat/adapted-store'
import { WrittenExpiries } from '../../lib/compat/written-expiries'
import { useFakeDate } from '../support/clock'
import { cookiePair, sessionCookie } from '../support/http'
import { dropSchema, makePool, testSchema } from '../support/postgres'

// express-session and connect-pg-simple ship no types of their own; they are used as plain JS.
const expressSession = require('express-session') as unknown
const connectPgSimple = require('connect-pg-simple') as (
  session: unknown,
) => new (options: object) => LegacyStore & { close(): void }

const SECRET = 'adapted-touch-secret'
const IDLE = 3_600_000
const TOUCH_AFTER = 60_000
const STORE_TIMEOUT = 60_000
const schema = testSchema('adapted_touch')
const pool = makePool({ connectionTimeoutMillis: 60_000 })
const PgSession = connectPgSimple(expressSession)
const legacies: Array<{ close(): void }> = []
let tables = 0

beforeAll(async () => {
  await pool.query(`CREATE SCHEMA "${schema}"`)
})
afterAll(async () => {
  for (const legacy of legacies) legacy.close()
  await dropSchema(schema)
  await pool.end()
})

const fake = useFakeDate()
const clock = { ...fake, goTo: (at: number) => fake.advance(at - fake.now()) }

/** A connect-pg-simple store on a table of its own whose touch() calls are recorded. */
async function pgSimple() {
  const table = `session_${tables++}`
  const legacy = new PgSession({
    pool,
    schemaName: schema,
    tableName: table,
    createTableIfMissing: true,
    pruneSessionInterval: false,
  })
  legacies.push(legacy)
  // connect-pg-simple creates its table on first use; create it now so column reads work.
  await pool.query(
    `CREATE TABLE "${schema}"."${table}" (sid varchar NOT NULL PRIMARY KEY, ` +
      'sess json NOT NULL, expire timestamp(6) NOT NULL)',
  )
  const touches: Array<{ id: string; at: number }> = []
  const touch = legacy.touch!.bind(legacy)
  legacy.touch = (id: string, sess: unknown, cb?: (err?: unknown) => void) => {
    touches.push({ id, at: clock.now() })
    return touch(id, sess, cb)
  }
  /** The `expire` column of `id`, in epoch ms. */
  const expire = async (id: string): Promise<number> => {
    const { rows } = await pool.query<{ ms: string }>(
      `SELECT (extract(epoch FROM expire) * 1000)::bigint::text AS ms ` +
        `FROM "${schema}"."${table}" WHERE sid = $1`,
      [id],
    )
    return Number(rows[0]!.ms)
  }
  return { legacy, touches, expire }
}

/** A cart app over `legacy`, adapted; each app stands for one process. */
function app(legacy: LegacyStore, touchAfter: number | undefined, rememberExpiries?: number) {
  const store = adaptLegacyStore(legacy, { timeout: STORE_TIMEOUT, rememberExpiries })
  const a = express()
  a.use(session(store, { secret: SECRET, idleTimeout: IDLE, touchAfter }))
  a.post('/cart', (req, res) => {
    ;(req.session as unknown as { cart: string[] }).cart = ['tea']
    res.json({ id: req.session.id })
  })
  a.post('/short', (req, res) => {
    req.session.cookie.maxAge = IDLE / 2
    res.json({ id: req.session.id })
  })
  a.post('/logout', async (req, res) => {
    await req.session.destroy()
    res.json({ ok: true })
  })
  a.post('/regenerate', async (req, res) => {
    await req.session.regenerate({ keepData: true })
    res.json({ id: req.session.id })
  })
  a.get('/cart', (req, res) => res.json({ id: (req.session as { id?: string }).id ?? null }))
  return a
}

async function signIn(a: express.Express) {
  const res = await request(a).post('/cart')
  expect(res.status).toBe(200)
  return { cookie: cookiePair(sessionCookie(res)), id: res.body.id as string }
}

/**
 * Reads the session every 10 s for 5 minutes, taking turns over `apps` (processes sharing the
 * table); after each read the `expire` column must be within touchAfter of the exact expiry
 * (connect-pg-simple rounds it up to the second). Resolves to the distinct `expire` values the
 * reads made.
 */
async function readFor5Minutes(
  apps: express.Express[],
  cookie: string,
  id: string,
  expire: (id: string) => Promise<number>,
  touchAfter: number,
): Promise<number> {
  const seen = new Set([await expire(id)])
  for (let i = 0; i < 30; i++) {
    clock.advance(10_000)
    const res = await request(apps[i % apps.length]!)
      .get('/cart')
      .set('Cookie', cookie)
    expect(res.body.id).toBe(id)
    const exact = clock.now() + IDLE
    const stored = await expire(id)
    expect(stored).toBeLessThanOrEqual(exact + 1_000)
    expect(stored).toBeGreaterThanOrEqual(exact - touchAfter)
    seen.add(stored)
  }
  return seen.size - 1
}

describe('touchAfter on connect-pg-simple through adaptLegacyStore', () => {
  it('writes the expire column 5 times in 5 minutes of reads every 10 s, not 30', async () => {
    const { legacy, touches, expire } = await pgSimple()
    const a = app(legacy, TOUCH_AFTER)
    const { cookie, id } = await signIn(a)
    const start = clock.now()
    expect(await readFor5Minutes([a], cookie, id, expire, TOUCH_AFTER)).toBe(5)
    expect(touches.map((t) => (t.at - start) / 1000)).toEqual([60, 120, 180, 240, 300])
  })

  it('never lets the session end early: it lives idleTimeout - touchAfter past the last read', async () => {
    const { legacy, expire } = await pgSimple()
    const a = app(legacy, TOUCH_AFTER)
    const { cookie, id } = await signIn(a)
    await readFor5Minutes([a], cookie, id, expire, TOUCH_AFTER)
    // The last write was at the last read (300 s); skip ahead by 50 s of further reads.
    for (let i = 0; i < 5; i++) {
      clock.advance(10_000)
      await request(a).get('/cart').set('Cookie', cookie).expect(200)
    }
    clock.advance(IDLE - TOUCH_AFTER)
    const alive = await request(a).get('/cart').set('Cookie', cookie)
    expect(alive.body.id).toBe(id)
    // Idle for a full idleTimeout past that read: gone, as without throttling.
    clock.advance(IDLE + 1_000)
    const gone = await request(a).get('/cart').set('Cookie', cookie)
    expect(gone.body.id).not.toBe(id)
  })

  it('without touchAfter, every read writes', async () => {
    const { legacy, touches, expire } = await pgSimple()
    const a = app(legacy, undefined)
    const { cookie, id } = await signIn(a)
    expect(await readFor5Minutes([a], cookie, id, expire, 0)).toBe(30)
    expect(touches).toHaveLength(30)
  })

  it('two processes each know only their own touch: at most one write per interval each, and the bound holds', async () => {
    const { legacy, touches, expire } = await pgSimple()
    const a = app(legacy, TOUCH_AFTER)
    const b = app(legacy, TOUCH_AFTER)
    const { cookie, id } = await signIn(a)
    const start = clock.now()
    // b reads at 10 s, 30 s, ...; a at 20 s, 40 s, ...: each writes once its own last write (or
    // the saved expiry) is a minute old, not knowing the other one's.
    expect(await readFor5Minutes([b, a], cookie, id, expire, TOUCH_AFTER)).toBe(9)
    expect(touches.map((t) => (t.at - start) / 1000)).toEqual([
      60, 70, 120, 130, 180, 190, 240, 250, 300,
    ])
  })

  it('a save from another process (here one that shortens the idle timeout) replaces what this one remembers', async () => {
    const { legacy, expire } = await pgSimple()
    const a = app(legacy, TOUCH_AFTER)
    const b = app(legacy, TOUCH_AFTER)
    const { cookie, id } = await signIn(a)
    const start = clock.now()
    clock.advance(60_000)
    await request(a).get('/cart').set('Cookie', cookie).expect(200) // a writes 60 s + IDLE
    clock.advance(40_000)
    await request(b).post('/short').set('Cookie', cookie).expect(200) // 100 s + IDLE / 2
    // connect-pg-simple rounds the expiry up to the second.
    expect(await expire(id)).toBeGreaterThanOrEqual(start + 100_000 + IDLE / 2)
    expect(await expire(id)).toBeLessThan(start + 101_000 + IDLE / 2)
    // At 60 s + IDLE / 2, the touched expiry equals the 60 s + IDLE that a wrote, while the
    // column says 100 s + IDLE / 2, only 40 s ahead: judged by its own write, a would not write.
    clock.goTo(start + 60_000 + IDLE / 2)
    await request(a).get('/cart').set('Cookie', cookie).expect(200)
    const exact = clock.now() + IDLE / 2
    expect(await expire(id)).toBeGreaterThanOrEqual(exact - TOUCH_AFTER)
  })

  it('an id forgotten from the bounded memory costs one extra write, then is throttled again', async () => {
    const { legacy, touches, expire } = await pgSimple()
    const a = app(legacy, TOUCH_AFTER, 1)
    const x = await signIn(a)
    const y = await signIn(a)
    const start = clock.now()
    const writesOf = (id: string) =>
      touches.filter((t) => t.id === id).map((t) => (t.at - start) / 1000)
    for (let i = 1; i <= 30; i++) {
      clock.goTo(start + i * 10_000)
      await request(a).get('/cart').set('Cookie', x.cookie).expect(200)
      const exact = clock.now() + IDLE
      expect(await expire(x.id)).toBeGreaterThanOrEqual(exact - TOUCH_AFTER)
      // One read of y at 125 s, past its first minute: its touch pushes x out of the memory.
      if (i === 12) {
        clock.advance(5_000)
        await request(a).get('/cart').set('Cookie', y.cookie).expect(200)
      }
    }
    expect(writesOf(y.id)).toEqual([125])
    // x at 130 s is judged by its stored session alone (the expiry saved at 0 s): one extra
    // write, then every minute again from there.
    expect(writesOf(x.id)).toEqual([60, 120, 130, 190, 250])
  })

  it.each(['destroy', 'regenerate'] as const)(
    'forgets an id on %s, so it does not push a live one out of the memory',
    async (how) => {
      const { legacy, touches } = await pgSimple()
      const a = app(legacy, TOUCH_AFTER, 2)
      const y = await signIn(a)
      const x = await signIn(a)
      const start = clock.now()
      clock.advance(60_000)
      await request(a).get('/cart').set('Cookie', y.cookie).expect(200) // touches y
      await request(a).get('/cart').set('Cookie', x.cookie).expect(200) // touches x, after y
      clock.advance(10_000)
      if (how === 'destroy') {
        await request(a).post('/logout').set('Cookie', x.cookie).expect(200)
        await signIn(a) // a third session: x's place, had x been kept
      } else {
        const res = await request(a).post('/regenerate').set('Cookie', x.cookie).expect(200)
        expect(res.body.id).not.toBe(x.id)
      }
      // y is still remembered (touched at 60 s): 40 s later, no write. Had x been kept, y would
      // be the least recently used of three and forgotten, and this read would write.
      clock.advance(30_000)
      await request(a).get('/cart').set('Cookie', y.cookie).expect(200)
      expect(touches.filter((t) => t.id === y.id).map((t) => (t.at - start) / 1000)).toEqual([60])
    },
  )
})

describe('WrittenExpiries: the bounded memory of written expiries', () => {
  const at = (version: number, expiresAt: number) => ({ version, expiresAt })

  it('holds at most its limit, forgetting the least recently used first', () => {
    const written = new WrittenExpiries(3)
    for (let i = 0; i < 10; i++) written.wrote(`s${i}`, at(1, 1_000), 5_000 + i)
    expect(written.size).toBe(3)
    expect(written.known('s9', at(1, 1_000))).toBe(5_009)
    expect(written.known('s6', at(1, 1_000))).toBe(1_000) // forgotten: the stored session rules
    // s7 read just now is kept over s8 when a new id comes in.
    expect(written.known('s7', at(1, 1_000))).toBe(5_007)
    written.wrote('s10', at(1, 1_000), 5_010)
    expect(written.size).toBe(3)
    expect(written.known('s7', at(1, 1_000))).toBe(5_007)
    expect(written.known('s8', at(1, 1_000))).toBe(1_000)
  })

  it('defaults to 10 000 ids', () => {
    const written = new WrittenExpiries()
    expect(written.limit).toBe(10_000)
    for (let i = 0; i < 10_050; i++) written.wrote(`s${i}`, at(1, 0), 1)
    expect(written.size).toBe(10_000)
  })

  it('drops what it wrote once the stored session changed, and never lowers the stored expiry', () => {
    const written = new WrittenExpiries(10)
    written.wrote('s', at(2, 1_000), 9_000)
    expect(written.known('s', at(2, 1_000))).toBe(9_000)
    expect(written.known('s', at(3, 4_000))).toBe(4_000) // saved since, by anyone
    expect(written.known('s', at(2, 1_000))).toBe(1_000) // and not remembered after that
    written.wrote('s', at(2, 20_000), 9_000)
    expect(written.known('s', at(2, 20_000))).toBe(20_000)
  })

  it('forgets a destroyed id, and remembers nothing with a limit of 0', () => {
    const written = new WrittenExpiries(10)
    written.wrote('s', at(1, 1_000), 9_000)
    written.forget('s')
    expect(written.known('s', at(1, 1_000))).toBe(1_000)
    const none = new WrittenExpiries(0)
    none.wrote('s', at(1, 1_000), 9_000)
    expect(none.size).toBe(0)
    expect(none.known('s', at(1, 1_000))).toBe(1_000)
  })

  it.each([-1, 1.5, Number.NaN, '10' as unknown as number])(
    'rejects rememberExpiries %p with a clear error',
    (limit) => {
      expect(() =>
        adaptLegacyStore(new (require('express-session').MemoryStore)(), {
          rememberExpiries: limit,
        }),
      ).toThrow(/rememberExpiries must be a whole number of session ids, 0 or more/)
    },
  )
})
