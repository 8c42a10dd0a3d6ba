/**
 * Touch throttling (`touchAfter`) where a touch costs a write, counted with an injected clock:
 * a read every 10 s for 5 minutes with `touchAfter: 60_000` writes the expiry 5 times instead
 * of 30 (file: futimes calls; PostgreSQL: row versions; an adapted express-session store: its
 * touch calls), and the stored expiry never falls more than `touchAfter` behind the exact one.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import express from 'express'
import request from 'supertest'
import session, { type Store } from '../entries/index'
import { adaptLegacyStore } from '../entries/express-session'
import dropIn from '../entries/express-session'
import { FileStore } from '../entries/file'
import * as fileOps from '../stores/file/fs'
import { PostgresStore } from '../entries/postgres'
import { useFakeDate } from './support/clock'
import { cookiePair, sessionCookie } from './support/http'
import { dropSchema, makePool, testSchema } from './support/postgres'
import { storedId } from './support/at-rest'

const SECRET = 'touch-throttle-secret'
const IDLE = 3_600_000
const TOUCH_AFTER = 60_000
const root = mkdtempSync(join(tmpdir(), 'concord-touch-'))
const schema = testSchema('touch')
const pool = makePool()
afterAll(async () => {
  rmSync(root, { recursive: true, force: true })
  await dropSchema(schema)
  await pool.end()
})

const clock = useFakeDate()

/** A cart app over `store`; returns the session's cookie and id after its first request. */
async function started(store: Store, touchAfter: number | undefined) {
  const app = express()
  app.use(session(store, { secret: SECRET, idleTimeout: IDLE, touchAfter }))
  app.post('/cart', (req, res) => {
    ;(req.session as unknown as { cart: string[] }).cart = ['tea']
    res.json({ id: req.session.id })
  })
  app.get('/cart', (req, res) => res.json({ id: req.session.id }))
  const res = await request(app).post('/cart')
  const id = res.body.id as string
  // A concord store keeps it under the keyed hash of its id; an express-session store, by id.
  const raw = (store as { storesRawIds?: boolean }).storesRawIds === true
  return {
    app,
    cookie: cookiePair(sessionCookie(res)),
    id,
    stored: raw ? id : storedId(id, SECRET),
  }
}

/**
 * Reads the session every 10 s for 5 minutes; after each read, checks the stored expiry is
 * within touchAfter of the exact one. `countWrites` is asked after each read and resolves to the
 * writes seen so far; resolves to the number of writes during the reads.
 */
async function readFor5Minutes(
  store: Store,
  touchAfter: number | undefined,
  countWrites: (id: string) => Promise<number>,
): Promise<number> {
  const { app, cookie, id, stored } = await started(store, touchAfter)
  const before = await countWrites(stored)
  for (let i = 0; i < 30; i++) {
    clock.advance(10_000)
    const res = await request(app).get('/cart').set('Cookie', cookie)
    expect(res.body.id).toBe(id)
    const exact = clock.now() + IDLE
    const storedExpiry = (await store.load(stored))!.expiresAt
    expect(storedExpiry).toBeLessThanOrEqual(exact)
    expect(storedExpiry).toBeGreaterThanOrEqual(exact - (touchAfter ?? 0))
    await countWrites(stored)
  }
  return (await countWrites(stored)) - before
}

describe('touchAfter', () => {
  it('rejects a value that is not a positive number of ms at setup', () => {
    expect(() => session({ secret: SECRET, touchAfter: -5 })).toThrow(
      /touchAfter must be a positive number/,
    )
  })

  describe('FileStore: the touch is a futimes on the session file', () => {
    let futimes: jest.SpiedFunction<typeof fileOps.fsFutimes>
    beforeEach(() => {
      futimes = jest.spyOn(fileOps, 'fsFutimes')
    })
    afterEach(() => futimes.mockRestore())
    const count = async () => futimes.mock.calls.length

    it('writes 5 times in 5 minutes of reads every 10 s, not 30', async () => {
      const store = new FileStore({ dir: join(root, 'throttled') })
      expect(await readFor5Minutes(store, TOUCH_AFTER, count)).toBe(5)
      await store.close()
    })

    it('without touchAfter, every read writes', async () => {
      const store = new FileStore({ dir: join(root, 'every') })
      expect(await readFor5Minutes(store, undefined, count)).toBe(30)
      await store.close()
    })
  })

  describe('PostgresStore: the touch is an UPDATE of the row', () => {
    /** Each UPDATE makes a new row version with a new xmin: count the versions seen. */
    function rowVersions(store: PostgresStore, table: string) {
      const seen = new Set<string>()
      return async (id: string) => {
        const { rows } = await pool.query<{ xmin: string }>(
          `SELECT xmin::text FROM "${schema}"."${table}" WHERE id = $1`,
          [id],
        )
        seen.add(rows[0]!.xmin)
        return seen.size
      }
    }

    it('updates the row 5 times in 5 minutes of reads every 10 s, not 30', async () => {
      const store = new PostgresStore({ pool, schema, table: 'throttled' })
      expect(await readFor5Minutes(store, TOUCH_AFTER, rowVersions(store, 'throttled'))).toBe(5)
      await store.close()
    })

    it('without touchAfter, every read updates it', async () => {
      const store = new PostgresStore({ pool, schema, table: 'every' })
      expect(await readFor5Minutes(store, undefined, rowVersions(store, 'every'))).toBe(30)
      await store.close()
    })
  })

  describe("an adapted express-session store: the touch is the store's touch()", () => {
    function counted() {
      const legacy = new dropIn.MemoryStore()
      let touches = 0
      const touch = legacy.touch.bind(legacy)
      legacy.touch = (...args: Parameters<typeof touch>) => {
        touches++
        return touch(...args)
      }
      return { store: adaptLegacyStore(legacy), count: async () => touches }
    }

    it('calls touch 5 times in 5 minutes of reads every 10 s, not 30', async () => {
      const { store, count } = counted()
      expect(await readFor5Minutes(store, TOUCH_AFTER, count)).toBe(5)
    })

    it('without touchAfter, every read touches', async () => {
      const { store, count } = counted()
      expect(await readFor5Minutes(store, undefined, count)).toBe(30)
    })
  })
})
