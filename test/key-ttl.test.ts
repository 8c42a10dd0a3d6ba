/**
 * keyTtl: a session key with a lifetime of its own, through the middleware. Time moves with
 * the test clock; concurrent requests meet at gates, not at sleeps.
 */
import express from 'express'
import request from 'supertest'
import session, { keyTtl, MemoryStore, type Store } from '../entries/index'
import { parseDuration } from '../lib/key-ttl'
import { useFakeDate } from './support/clock'
import { cookiePair, sessionCookie } from './support/http'

const SECRET = 'key-ttl-test-secret'
const MINUTE = 60_000
type Data = Record<string, unknown>

const clock = useFakeDate()
const stores: MemoryStore[] = []
function memory(): MemoryStore {
  const store = new MemoryStore()
  stores.push(store)
  return store
}
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close()
})

/** An app over `store`; `before` runs in each handler after the load, before any change. */
function appWith(store: Store, before: () => Promise<void> = async () => {}) {
  const app = express()
  app.use(session(store, { secret: SECRET, cookie: { maxAge: 60 * MINUTE } }))
  app.get('/read', (req, res) => {
    const ttl = keyTtl(req.session)
    const data = { ...req.session } as Data
    res.json({
      data,
      expires: Object.fromEntries(Object.keys(data).map((k) => [k, ttl.expiresAt(k) ?? null])),
    })
  })
  app.post('/ttl/:key/:value/:ttl', async (req, res, next) => {
    try {
      await before()
      const ttl = /^\d+$/.test(req.params.ttl!) ? Number(req.params.ttl) : req.params.ttl!
      keyTtl(req.session).set(req.params.key!, req.params.value, ttl)
      res.json({ expiresAt: keyTtl(req.session).expiresAt(req.params.key!) })
    } catch (err) {
      next(err)
    }
  })
  app.post('/set/:key/:value', async (req, res) => {
    await before()
    ;(req.session as unknown as Data)[req.params.key!] = req.params.value
    res.end()
  })
  app.post('/delete/:key', (req, res) => {
    delete (req.session as unknown as Data)[req.params.key!]
    res.end()
  })
  app.post('/regenerate', async (req, res) => {
    await req.session.regenerate({ keepData: true })
    res.end()
  })
  app.use((err: Error, _req: express.Request, res: express.Response, _next: unknown) => {
    res.status(400).json({ error: err.message })
  })
  return app
}

async function start(app: express.Express): Promise<string> {
  const res = await request(app).post('/set/cart/tea')
  return cookiePair(sessionCookie(res))
}

const read = async (app: express.Express, cookie: string) =>
  (await request(app).get('/read').set('Cookie', cookie)).body as {
    data: Data
    expires: Record<string, number | null>
  }

describe('keyTtl', () => {
  it('keeps a key until its lifetime ends, then the next load finds it gone', async () => {
    const app = appWith(memory())
    const cookie = await start(app)
    const set = await request(app).post('/ttl/otp/123456/5m').set('Cookie', cookie)
    expect(set.body.expiresAt).toBe(clock.now() + 5 * MINUTE)
    clock.advance(5 * MINUTE - 1)
    expect(await read(app, cookie)).toEqual({
      data: { cart: 'tea', otp: '123456' },
      expires: { cart: null, otp: clock.now() + 1 },
    })
    clock.advance(1)
    expect(await read(app, cookie)).toEqual({ data: { cart: 'tea' }, expires: { cart: null } })
  })

  it('assigning the key makes it plain, deleting it drops its lifetime, setting it again resets it', async () => {
    const app = appWith(memory())
    const cookie = await start(app)
    await request(app).post('/ttl/a/1/1m').set('Cookie', cookie)
    await request(app).post('/set/a/2').set('Cookie', cookie) // overwritten: no lifetime now
    await request(app).post('/ttl/b/1/1m').set('Cookie', cookie)
    await request(app).post('/delete/b').set('Cookie', cookie)
    await request(app).post('/set/b/plain').set('Cookie', cookie) // a new b, with no lifetime
    await request(app).post('/ttl/c/1/1m').set('Cookie', cookie)
    clock.advance(MINUTE / 2)
    await request(app).post('/ttl/c/2/1m').set('Cookie', cookie) // a new lifetime from now
    clock.advance(MINUTE / 2)
    expect((await read(app, cookie)).data).toEqual({ cart: 'tea', a: '2', b: 'plain', c: '2' })
    clock.advance(MINUTE / 2)
    expect((await read(app, cookie)).data).toEqual({ cart: 'tea', a: '2', b: 'plain' })
  })

  it('keeps lifetimes through regenerate({ keepData: true })', async () => {
    const app = appWith(memory())
    const cookie = await start(app)
    await request(app).post('/ttl/otp/1/2m').set('Cookie', cookie)
    const res = await request(app).post('/regenerate').set('Cookie', cookie)
    const renewed = cookiePair(sessionCookie(res))
    expect(renewed).not.toBe(cookie)
    expect((await read(app, renewed)).data).toEqual({ cart: 'tea', otp: '1' })
    clock.advance(2 * MINUTE)
    expect((await read(app, renewed)).data).toEqual({ cart: 'tea' })
  })

  it('two processes giving different keys lifetimes at once both keep theirs', async () => {
    const store = memory()
    // Both requests load before either saves, so the second save meets the first as a conflict
    // and replays onto it.
    let loaded = 0
    let release!: () => void
    let bothLoaded!: Promise<void>
    const newRound = () => {
      loaded = 0
      bothLoaded = new Promise<void>((resolve) => (release = resolve))
    }
    const meet = async () => {
      if (++loaded === 2) release()
      await bothLoaded
    }
    const one = appWith(store, meet)
    const two = appWith(store, meet)
    const cookie = await start(appWith(store))
    newRound()
    const [a, b] = await Promise.all([
      request(one).post('/ttl/otp/1/5m').set('Cookie', cookie),
      request(two).post('/ttl/flash/hi/10m').set('Cookie', cookie),
    ])
    expect([a.status, b.status]).toEqual([200, 200])
    expect(await read(one, cookie)).toEqual({
      data: { cart: 'tea', otp: '1', flash: 'hi' },
      expires: { cart: null, otp: clock.now() + 5 * MINUTE, flash: clock.now() + 10 * MINUTE },
    })
    // A third, plain write replayed onto both keeps their lifetimes too.
    newRound()
    await Promise.all([
      request(one).post('/set/cart/cake').set('Cookie', cookie),
      request(two).post('/set/note/x').set('Cookie', cookie),
    ])
    clock.advance(5 * MINUTE)
    expect((await read(two, cookie)).data).toEqual({ cart: 'cake', note: 'x', flash: 'hi' })
    clock.advance(5 * MINUTE)
    expect((await read(two, cookie)).data).toEqual({ cart: 'cake', note: 'x' })
  })

  it('rejects a bad lifetime or key with a message saying what to write, and saves nothing', async () => {
    const app = appWith(memory())
    const cookie = await start(app)
    for (const bad of ['5x', '0', '-1m', '5 minutes', 'm']) {
      const res = await request(app).post(`/ttl/otp/1/${bad}`).set('Cookie', cookie)
      expect(res.status).toBe(400)
      expect(res.body.error).toMatch(/positive number of ms or a string such as '90s', '5m'/)
    }
    const res = await request(app).post('/ttl/cookie/1/5m').set('Cookie', cookie)
    expect(res.body.error).toMatch(/key must be a non-empty string other than 'cookie'/)
    expect((await read(app, cookie)).data).toEqual({ cart: 'tea' })
  })
})

describe('parseDuration', () => {
  it('reads ms and the s, m, h, d units', () => {
    expect(parseDuration(1500)).toBe(1500)
    expect(parseDuration('500ms')).toBe(500)
    expect(parseDuration('90s')).toBe(90_000)
    expect(parseDuration('1.5m')).toBe(90_000)
    expect(parseDuration('2h')).toBe(7_200_000)
    expect(parseDuration('1d')).toBe(86_400_000)
  })
  it('refuses what is not a positive duration', () => {
    for (const bad of [0, -5, NaN, Infinity, '', '5', '5y', 'five minutes'])
      expect(() => parseDuration(bad as number | string)).toThrow(TypeError)
    expect(() => parseDuration(undefined as unknown as string)).toThrow(/got undefined/)
  })
})
