/**
 * The req.session API: save, regenerate, destroy, reload, touch and setUser, in promise and
 * callback form.
 */
import express from 'express'
import request from 'supertest'
import session, { MemoryStore, SessionDataError, sessionInfo } from '../entries/index'
import { CountingStore } from './support/stores'
import { cookiePair, sessionCookie, setCookies } from './support/http'
import { storedId } from './support/at-rest'

type Data = Record<string, unknown>
const data = (req: express.Request) => req.session as unknown as Data

function shop(store = new MemoryStore(), options = {}) {
  const app = express()
  app.use(session(store, { secret: 'session-api-secret', ...options }))
  app.get('/read', (req, res) => res.json({ id: req.session.id, data: { ...req.session } }))
  app.post('/cart/:item', (req, res) => {
    const cart = ((data(req).cart as string[] | undefined) ??= [])
    cart.push(req.params.item!)
    res.json({ id: req.session.id })
  })
  return { app, store }
}

async function started(app: express.Express): Promise<{ cookie: string; id: string }> {
  const res = await request(app).post('/cart/tea')
  return { cookie: cookiePair(sessionCookie(res)), id: res.body.id }
}

describe('save()', () => {
  it('saves mid-request, and what changes after it is saved at the end', async () => {
    const { app, store } = shop()
    let seenMidway: unknown
    app.post('/two-step', async (req, res) => {
      data(req).step = 1
      await req.session.save()
      seenMidway = (await store.load(storedId(req.session.id, 'session-api-secret')))?.data
      data(req).step = 2
      res.json({ id: req.session.id })
    })
    const res = await request(app).post('/two-step')
    expect(seenMidway).toEqual({ step: '1' })
    expect((await store.load(storedId(res.body.id, 'session-api-secret')))?.data).toEqual({
      step: '2',
    })
  })

  it('takes a callback instead of a promise', async () => {
    const { app, store } = shop()
    app.post('/cb', (req, res) => {
      data(req).viaCallback = true
      void req.session.save((err) => res.json({ err: err ?? null, id: req.session.id }))
    })
    const res = await request(app).post('/cb')
    expect(res.body.err).toBeNull()
    expect((await store.load(storedId(res.body.id, 'session-api-secret')))?.data).toEqual({
      viaCallback: 'true',
    })
  })
})

describe('regenerate()', () => {
  it('gives a new id, kills the old one, and starts empty', async () => {
    const { app, store } = shop()
    app.post('/login', async (req, res) => {
      await req.session.regenerate()
      data(req).user = 'ann'
      res.json({ id: req.session.id, data: { ...req.session } })
    })
    const before = await started(app)
    const res = await request(app).post('/login').set('Cookie', before.cookie)
    expect(res.body.id).not.toBe(before.id)
    expect(res.body.data).toEqual({ user: 'ann' })
    expect(await store.load(storedId(before.id, 'session-api-secret'))).toBeNull()
    expect(cookiePair(sessionCookie(res))).not.toBe(before.cookie)
    // The old cookie is now worthless: it gets a fresh, empty session.
    const replay = await request(app).get('/read').set('Cookie', before.cookie)
    expect(replay.body.data).toEqual({})
    expect(replay.body.id).not.toBe(before.id)
  })

  it('keeps the data, the owner and the cookie settings with keepData: true', async () => {
    const { app, store } = shop(new MemoryStore(), { cookie: { maxAge: 60_000 } })
    app.post('/remember', (req, res) => {
      req.session.cookie.maxAge = 120_000
      req.session.setUser('ann')
      res.end()
    })
    app.post('/login', (req, res, next) => {
      void req.session.regenerate({ keepData: true }, (err) =>
        err ? next(err) : res.json({ id: req.session.id }),
      )
    })
    const before = await started(app)
    await request(app).post('/remember').set('Cookie', before.cookie)
    const res = await request(app).post('/login').set('Cookie', before.cookie)
    const record = await store.load(storedId(res.body.id, 'session-api-secret'))
    expect(record).toMatchObject({
      data: { cart: '["tea"]' },
      userId: 'ann',
      cookie: { originalMaxAge: 120_000 },
    })
    expect(await store.load(storedId(before.id, 'session-api-secret'))).toBeNull()
    expect(await store.listByUser('ann')).toEqual([storedId(res.body.id, 'session-api-secret')])
  })
})

describe('destroy()', () => {
  it('removes the session, clears the cookie, and leaves req.session unset', async () => {
    const { app, store } = shop()
    app.post('/logout', async (req, res) => {
      await req.session.destroy()
      res.json({ after: req.session === undefined })
    })
    const before = await started(app)
    const res = await request(app).post('/logout').set('Cookie', before.cookie)
    expect(res.body.after).toBe(true)
    expect(sessionCookie(res)).toMatch(
      /^connect\.sid=; Max-Age=0; Path=\/; Expires=Thu, 01 Jan 1970/,
    )
    expect(await store.load(storedId(before.id, 'session-api-secret'))).toBeNull()
  })

  it('takes a callback', async () => {
    const { app, store } = shop()
    app.post('/logout', (req, res) => req.session.destroy((err) => res.json({ err: err ?? null })))
    const before = await started(app)
    expect((await request(app).post('/logout').set('Cookie', before.cookie)).body.err).toBeNull()
    expect(await store.load(storedId(before.id, 'session-api-secret'))).toBeNull()
  })
})

describe('reload()', () => {
  it('picks up what another request saved meanwhile', async () => {
    const { app } = shop()
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    let arrived!: () => void
    const hasArrived = new Promise<void>((resolve) => (arrived = resolve))
    app.get('/reloaded', async (req, res) => {
      arrived() // its session is loaded, before the other request's save
      await gate
      await req.session.reload()
      res.json({ cart: data(req).cart })
    })
    const before = await started(app)
    const pending = request(app)
      .get('/reloaded')
      .set('Cookie', before.cookie)
      .then((r) => r)
    await hasArrived
    await request(app).post('/cart/jam').set('Cookie', before.cookie)
    release()
    expect((await pending).body.cart).toEqual(['tea', 'jam'])
  })

  it('rejects when the session is not in the store', async () => {
    const { app } = shop()
    app.get('/reload-new', (req, res) =>
      req.session.reload((err) => res.json({ message: err?.message })),
    )
    expect((await request(app).get('/reload-new')).body.message).toMatch(
      /cannot be reloaded: it is not in the store/,
    )
  })
})

describe('touch()', () => {
  it('extends the expiry in the store now', async () => {
    const { app, store } = shop(new MemoryStore(), { cookie: { maxAge: 60_000 } })
    const before = await started(app)
    const expiresBefore = (await store.load(storedId(before.id, 'session-api-secret')))!.expiresAt
    app.post('/touch', async (req, res) => {
      await new Promise((resolve) => setTimeout(resolve, 20))
      await req.session.touch()
      res.end()
    })
    await request(app).post('/touch').set('Cookie', before.cookie)
    expect(
      (await store.load(storedId(before.id, 'session-api-secret')))!.expiresAt,
    ).toBeGreaterThan(expiresBefore)
  })
})

describe('setUser() and the per-user index', () => {
  it('links sessions to a user, so they can be listed and signed out everywhere', async () => {
    const { app, store } = shop()
    app.post('/login/:user', async (req, res) => {
      await req.session.regenerate({ keepData: true })
      req.session.setUser(req.params.user!)
      res.json({ id: req.session.id })
    })
    const laptop = await request(app).post('/login/bob')
    const phone = await request(app).post('/login/bob')
    expect((await store.listByUser('bob')).sort()).toEqual(
      [laptop.body.id, phone.body.id].map((id) => storedId(id, 'session-api-secret')).sort(),
    )
    expect(await store.destroyByUser('bob')).toBe(2)
    const after = await request(app)
      .get('/read')
      .set('Cookie', cookiePair(sessionCookie(phone)))
    expect(after.body.id).not.toBe(phone.body.id)
  })

  it('rejects an empty or non-string user id', async () => {
    const { app } = shop()
    app.get('/bad-user', (req, res) => {
      try {
        req.session.setUser('')
        res.end('accepted')
      } catch (err) {
        res.end((err as Error).message)
      }
    })
    expect((await request(app).get('/bad-user')).text).toMatch(
      /userId must be a non-empty string or null/,
    )
  })
})

describe('what is kept in the session', () => {
  it('shows only the data in Object.keys and JSON', async () => {
    const { app } = shop()
    app.get('/keys', (req, res) => {
      data(req).a = 1
      res.json({ keys: Object.keys(req.session), json: JSON.parse(JSON.stringify(req.session)) })
    })
    expect((await request(app).get('/keys')).body).toEqual({ keys: ['a'], json: { a: 1 } })
  })

  it('refuses data that is not JSON with a 500 naming the key, and keeps the stored data', async () => {
    const { app, store } = shop()
    app.post('/bigint', (req, res) => {
      data(req).total = 10n
      res.end('ok?')
    })
    const before = await started(app)
    const res = await request(app).post('/bigint').set('Cookie', before.cookie)
    expect(res.status).toBe(500)
    expect(res.text).toMatch(
      /session key &quot;total&quot; cannot be saved as JSON|session key "total" cannot be saved as JSON/,
    )
    expect((await store.load(storedId(before.id, 'session-api-secret')))?.data).toEqual({
      cart: '["tea"]',
    })
  })

  it('refuses a session over maxSize with a clear 500, and keeps the stored data', async () => {
    const { app, store } = shop(new MemoryStore(), { maxSize: 1000 })
    let error: unknown
    app.post('/huge', (req, res) => {
      data(req).blob = 'x'.repeat(2000)
      res.end('ok?')
    })
    app.use(
      (err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
        error = err
        res.status(500).end()
      },
    )
    const before = await started(app)
    const res = await request(app).post('/huge').set('Cookie', before.cookie)
    expect(res.status).toBe(500)
    expect(error).toBeInstanceOf(SessionDataError)
    expect((error as Error).message).toMatch(/over maxSize 1000; keep large data elsewhere/)
    expect(setCookies(res)).toEqual([])
    expect((await store.load(storedId(before.id, 'session-api-secret')))?.data).toEqual({
      cart: '["tea"]',
    })
  })
})

describe('req.session.cookie', () => {
  it("takes express-session's spellings: expires = false and a Date as maxAge", async () => {
    const { app } = shop(new MemoryStore(), { cookie: { maxAge: 60_000 } })
    app.get('/spellings', (req, res) => {
      req.session.cookie.expires = false
      const afterFalse = [req.session.cookie.expires, req.session.cookie.originalMaxAge]
      req.session.cookie.maxAge = new Date(Date.now() + 10_000)
      const afterDate = req.session.cookie.originalMaxAge!
      res.json({ afterFalse, afterDate })
    })
    const res = await request(app).get('/spellings')
    expect(res.body.afterFalse).toEqual([null, null])
    expect(res.body.afterDate).toBeGreaterThan(9_000)
    expect(res.body.afterDate).toBeLessThanOrEqual(10_000)
  })
})

describe('sessionInfo()', () => {
  it('tells when a session began and ends, and its owner, without a store call', async () => {
    const store = new CountingStore()
    const app = express()
    app.use(
      session(store, {
        secret: 'info-secret',
        cookie: { maxAge: 60_000 },
        absoluteTimeout: 3_600_000,
      }),
    )
    app.post('/start', (req, res) => {
      data(req).a = 1
      res.json(sessionInfo(req.session))
    })
    app.get('/info', (req, res) => {
      req.session.setUser('ann')
      res.json(sessionInfo(req.session, 1_000_000))
    })
    const first = await request(app).post('/start')
    expect(first.body).toMatchObject({
      isNew: true,
      absoluteExpiresAt: first.body.createdAt + 3_600_000,
    })
    const loadsBefore = store.calls.load
    const res = await request(app)
      .get('/info')
      .set('Cookie', cookiePair(sessionCookie(first)))
    expect(store.calls.load - loadsBefore).toBe(1) // the middleware's own load, nothing more
    const { createdAt } = first.body
    expect(res.body).toEqual({
      id: first.body.id,
      createdAt,
      idleExpiresAt: Math.min(1_000_000 + 60_000, createdAt + 3_600_000),
      absoluteExpiresAt: createdAt + 3_600_000,
      isNew: false,
      userId: 'ann',
      storedId: storedId(first.body.id, 'info-secret'),
    })
  })
})
