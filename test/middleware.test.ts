/**
 * session() options, defaults and response handling, under Express 5 and Express 4.
 */
import { createServer } from 'node:http'
import express5, { type Express, type RequestHandler } from 'express'
import cookieParser from 'cookie-parser'
import request from 'supertest'
import session, { MemoryStore, type SessionOptions, type Store } from '../entries/index'
import { signSessionId } from '../lib/cookie'
import { attribute, cookiePair, sessionCookie, setCookies, sleep } from './support/http'
import { useFakeDate } from './support/clock'
import { CountingStore, SlowSavingStore } from './support/stores'
import { storedId } from './support/at-rest'

const express4 = require('express4') as typeof express5

const SECRET = 'middleware-test-secret'
type Data = Record<string, unknown>

describe.each([
  ['Express 5', express5],
  ['Express 4', express4],
])('session() under %s', (_label, express) => {
  function appWith(
    store: Store,
    options: SessionOptions = {},
    setup?: (app: Express) => void,
  ): Express {
    const app = express()
    setup?.(app)
    app.use(session(store, { secret: SECRET, ...options }))
    app.get('/read', (req, res) =>
      res.json({
        data: { ...req.session },
        id: req.session.id,
        maxAge: req.session.cookie.originalMaxAge,
      }),
    )
    app.post('/set/:key/:value', (req, res) => {
      ;(req.session as unknown as Data)[req.params.key!] = req.params.value
      res.json({ id: req.session.id })
    })
    app.post('/unset', (req, res) => {
      ;(req as { session: unknown }).session = null
      res.end('unset')
    })
    app.post('/remember', (req, res) => {
      req.session.cookie.maxAge = 30 * 86_400_000
      res.end('remembered')
    })
    return app
  }

  describe('what it adds to req and res', () => {
    // Each property added to Express's req or res builds a new hidden class per request.
    it('adds req.session only (not sessionID or sessionStore) and wraps res.writeHead and res.end', async () => {
      const added: { req?: string[]; res?: string[] } = {}
      const app = express()
      let before: { req: Set<string>; res: Set<string> } | undefined
      app.use((req, res, next) => {
        before = { req: new Set(Object.keys(req)), res: new Set(Object.keys(res)) }
        next()
      })
      app.use(session(new MemoryStore(), { secret: SECRET }))
      app.use((req, res, next) => {
        added.req = Object.keys(req).filter((k) => !before!.req.has(k))
        added.res = Object.keys(res).filter((k) => !before!.res.has(k))
        next()
      })
      app.get('/keys', (req, res) => res.json({ id: req.session.id }))
      const res = await request(app).get('/keys')
      expect(res.status).toBe(200)
      expect(typeof res.body.id).toBe('string')
      expect(added.req).toEqual(['session'])
      expect(added.res!.sort()).toEqual(['end', 'writeHead'])
    })
  })

  describe('defaults', () => {
    it('issues no cookie and saves nothing for a session that holds nothing (saveUninitialized: false)', async () => {
      const store = new CountingStore()
      const res = await request(appWith(store)).get('/read')
      expect(res.status).toBe(200)
      expect(setCookies(res)).toEqual([])
      expect(store.calls.save).toBe(0)
    })

    it('issues an HttpOnly, SameSite=Lax, Path=/ browser-session cookie named connect.sid once there is data', async () => {
      const res = await request(appWith(new MemoryStore())).post('/set/a/1')
      const cookie = sessionCookie(res)!
      expect(cookie).toMatch(/^connect\.sid=s%3A[0-9a-f-]{36}\.[\w%]{43,60}; /)
      expect(attribute(cookie, 'HttpOnly')).toBe(true)
      expect(attribute(cookie, 'SameSite')).toBe('Lax')
      expect(attribute(cookie, 'Path')).toBe('/')
      expect(attribute(cookie, 'Secure')).toBeUndefined()
      expect(attribute(cookie, 'Expires')).toBeUndefined()
    })

    it('does not save or re-send the cookie for an unchanged session (resave: false, rolling: false)', async () => {
      const store = new CountingStore()
      const app = appWith(store, { cookie: { maxAge: 60_000 } })
      const cookie = cookiePair(sessionCookie(await request(app).post('/set/a/1')))
      const res = await request(app).get('/read').set('Cookie', cookie)
      expect(res.body.data).toEqual({ a: '1' })
      expect(setCookies(res)).toEqual([])
      expect(store.calls.save).toBe(1)
      expect(store.calls.touch).toBe(0) // the touch rode on the load
    })
  })

  describe('secure: "auto" and proxy', () => {
    const https = (app: Express) => request(app).post('/set/a/1').set('X-Forwarded-Proto', 'https')

    it('sets Secure behind a trusted proxy that says https', async () => {
      const res = await https(appWith(new MemoryStore(), {}, (app) => app.set('trust proxy', 1)))
      expect(attribute(sessionCookie(res)!, 'Secure')).toBe(true)
    })

    it('ignores X-Forwarded-Proto when the proxy is not trusted', async () => {
      const res = await https(appWith(new MemoryStore()))
      expect(attribute(sessionCookie(res)!, 'Secure')).toBeUndefined()
    })

    it('proxy: true trusts X-Forwarded-Proto without trust proxy; proxy: false never does', async () => {
      expect(
        attribute(
          sessionCookie(await https(appWith(new MemoryStore(), { proxy: true })))!,
          'Secure',
        ),
      ).toBe(true)
      const untrusted = appWith(new MemoryStore(), { proxy: false }, (app) =>
        app.set('trust proxy', 1),
      )
      expect(attribute(sessionCookie(await https(untrusted))!, 'Secure')).toBeUndefined()
    })

    it('does not send a secure: true cookie over plain HTTP', async () => {
      const res = await request(appWith(new MemoryStore(), { cookie: { secure: true } })).post(
        '/set/a/1',
      )
      expect(setCookies(res)).toEqual([])
    })
  })

  describe('cookie options', () => {
    it('uses name, domain, path, sameSite, priority and partitioned', async () => {
      const app = appWith(new MemoryStore(), {
        name: 'shop.sid',
        cookie: {
          domain: 'example.com',
          sameSite: 'strict',
          priority: 'high',
          partitioned: true,
          secure: true,
        },
        proxy: true,
      })
      const cookie = sessionCookie(
        await request(app).post('/set/a/1').set('X-Forwarded-Proto', 'https'),
        'shop.sid',
      )!
      expect(cookie).toMatch(/^shop\.sid=/)
      expect(attribute(cookie, 'Domain')).toBe('example.com')
      expect(attribute(cookie, 'SameSite')).toBe('Strict')
      expect(attribute(cookie, 'Priority')).toBe('High')
      expect(attribute(cookie, 'Partitioned')).toBe(true)
    })

    it('takes a function of the request, validated per request', async () => {
      const app = appWith(new MemoryStore(), {
        cookie: (req) => ({ domain: req.headers['x-shop'] === 'b' ? 'b.example' : 'a.example' }),
      })
      expect(
        attribute(sessionCookie(await request(app).post('/set/a/1').set('X-Shop', 'b'))!, 'Domain'),
      ).toBe('b.example')
      expect(attribute(sessionCookie(await request(app).post('/set/a/1'))!, 'Domain')).toBe(
        'a.example',
      )
      const bad = appWith(new MemoryStore(), { cookie: () => ({ maxAge: -5 }) })
      const res = await request(bad).get('/read')
      expect(res.status).toBe(500)
      expect(res.text).toMatch(/maxAge must be a number/)
    })

    it('sends Expires and Max-Age with maxAge, and re-sends them when the session changes', async () => {
      const app = appWith(new MemoryStore(), { cookie: { maxAge: 60_000 } })
      const first = sessionCookie(await request(app).post('/set/a/1'))!
      expect(attribute(first, 'Max-Age')).toBe('60')
      expect(new Date(attribute(first, 'Expires') as string).getTime()).toBeGreaterThan(
        Date.now() + 50_000,
      )
      const again = await request(app).post('/set/a/2').set('Cookie', cookiePair(first))
      expect(sessionCookie(again)).toBeDefined()
    })

    it("persists a per-session maxAge change, in the cookie and in the store's idle timeout", async () => {
      const store = new MemoryStore()
      const app = appWith(store, { cookie: { maxAge: 60_000 } })
      const first = await request(app).post('/set/a/1')
      const cookie = cookiePair(sessionCookie(first))
      const remembered = await request(app).post('/remember').set('Cookie', cookie)
      expect(attribute(sessionCookie(remembered)!, 'Max-Age')).toBe(String(30 * 86_400))
      const read = await request(app).get('/read').set('Cookie', cookie)
      expect(read.body.maxAge).toBe(30 * 86_400_000)
      const record = await store.load(storedId(first.body.id, SECRET))
      expect(record).toMatchObject({
        cookie: { originalMaxAge: 30 * 86_400_000 },
        idleTimeout: 30 * 86_400_000,
      })
    })

    it('sends a cookie.expires Date as it is, even one in the past (the browser drops the cookie)', async () => {
      const app = appWith(new MemoryStore())
      app.post('/expire', (req, res) => {
        ;(req.session as unknown as Data).x = 1
        req.session.cookie.expires = new Date(0)
        res.end()
      })
      const cookie = sessionCookie(await request(app).post('/expire'))!
      expect(attribute(cookie, 'Expires')).toBe('Thu, 01 Jan 1970 00:00:00 GMT')
      expect(attribute(cookie, 'Max-Age')).toBe('0')
    })

    it('setting a cookie attribute to the value it already has is no change: the cookie is not re-sent', async () => {
      const app = appWith(new MemoryStore(), { cookie: { maxAge: 60_000 } })
      app.post('/browser-session', (req, res) => {
        req.session.cookie.expires = null
        ;(req.session as unknown as Data).hits =
          Number((req.session as unknown as Data).hits ?? 0) + 1
        res.end()
      })
      const first = sessionCookie(await request(app).post('/browser-session'))!
      expect(attribute(first, 'Expires')).toBeUndefined()
      const again = await request(app).post('/browser-session').set('Cookie', cookiePair(first))
      expect(setCookies(again)).toEqual([])
      expect((await request(app).get('/read').set('Cookie', cookiePair(first))).body).toMatchObject(
        { data: { hits: 2 }, maxAge: null },
      )
    })

    it('skips requests outside the cookie path', async () => {
      const app = express()
      app.use(session(new MemoryStore(), { secret: SECRET, cookie: { path: '/shop' } }))
      app.get('/shop/x', (req, res) => res.json({ has: req.session !== undefined }))
      app.get('/elsewhere', (req, res) => res.json({ has: req.session !== undefined }))
      expect((await request(app).get('/shop/x?q=1')).body).toEqual({ has: true })
      expect((await request(app).get('/elsewhere')).body).toEqual({ has: false })
    })
  })

  describe('resave, rolling, saveUninitialized, unset', () => {
    it('resave: true writes an unchanged session on every request', async () => {
      const store = new CountingStore()
      const app = appWith(store, { resave: true })
      const cookie = cookiePair(sessionCookie(await request(app).post('/set/a/1')))
      await request(app).get('/read').set('Cookie', cookie)
      await request(app).get('/read').set('Cookie', cookie)
      expect(store.calls.save).toBe(3)
      expect(store.saves.slice(1).map((s) => s.set)).toEqual([{}, {}]) // nothing rewritten, only the expiry
    })

    it('saveUninitialized: true saves and issues a cookie for an empty new session', async () => {
      const store = new CountingStore()
      const res = await request(appWith(store, { saveUninitialized: true })).get('/read')
      expect(sessionCookie(res)).toBeDefined()
      expect(store.calls.save).toBe(1)
    })

    it('unset: "destroy" destroys the session when the app sets req.session = null, and clears the cookie', async () => {
      const store = new MemoryStore()
      const app = appWith(store, { unset: 'destroy' })
      const first = await request(app).post('/set/a/1')
      const res = await request(app)
        .post('/unset')
        .set('Cookie', cookiePair(sessionCookie(first)))
      expect(sessionCookie(res)).toMatch(/^connect\.sid=; /)
      expect(await store.load(storedId(first.body.id, SECRET))).toBeNull()
    })

    it('unset: "keep" (the default) leaves the stored session alone', async () => {
      const store = new MemoryStore()
      const app = appWith(store)
      const first = await request(app).post('/set/a/1')
      const res = await request(app)
        .post('/unset')
        .set('Cookie', cookiePair(sessionCookie(first)))
      expect(setCookies(res)).toEqual([])
      expect(await store.load(storedId(first.body.id, SECRET))).not.toBeNull()
    })
  })

  describe('genid and secrets', () => {
    it('uses a custom genid, which may be async', async () => {
      let n = 0
      const app = appWith(new MemoryStore(), {
        genid: async () => `custom-${++n}-${'x'.repeat(20)}`,
      })
      const res = await request(app).post('/set/a/1')
      expect(res.body.id).toBe(`custom-1-${'x'.repeat(20)}`)
    })

    it('fails the request with a clear error when genid returns an unusable id', async () => {
      const res = await request(appWith(new MemoryStore(), { genid: () => '../bad' })).get('/read')
      expect(res.status).toBe(500)
      expect(res.text).toMatch(/genid returned &quot;..\/bad&quot;|genid returned "..\/bad"/)
    })

    it('re-issues a cookie signed with an older secret under the first one', async () => {
      const store = new MemoryStore()
      const old = appWith(store, { secret: 'old-secret' })
      const first = await request(old).post('/set/a/1')
      const rotated = appWith(store, { secret: ['new-secret', 'old-secret'] })
      const res = await request(rotated)
        .get('/read')
        .set('Cookie', cookiePair(sessionCookie(first)))
      expect(res.body.data).toEqual({ a: '1' })
      expect(cookiePair(sessionCookie(res))).toBe(
        `connect.sid=${encodeURIComponent(signSessionId(first.body.id, 'new-secret'))}`,
      )
    })

    it('uses req.secret from cookie-parser when no secret is given', async () => {
      const app = express()
      app.use(cookieParser('parser-secret'))
      app.use(session(new MemoryStore()))
      app.post('/set', (req, res) => {
        ;(req.session as unknown as Data).a = 1
        res.json({ id: req.session.id })
      })
      app.get('/read', (req, res) => res.json(req.session))
      const first = await request(app).post('/set')
      expect(cookiePair(sessionCookie(first))).toBe(
        `connect.sid=${encodeURIComponent(signSessionId(first.body.id, 'parser-secret'))}`,
      )
      expect(
        (
          await request(app)
            .get('/read')
            .set('Cookie', cookiePair(sessionCookie(first)))
        ).body,
      ).toEqual({ a: 1 })
    })

    it('fails with a clear message when there is no secret at all', async () => {
      const app = express()
      app.use(session(new MemoryStore()))
      app.get('/', (_req, res) => res.end())
      const res = await request(app).get('/')
      expect(res.status).toBe(500)
      expect(res.text).toMatch(
        /a secret is required. Pass options.secret, or use cookie-parser with a secret/,
      )
    })
  })

  describe('responses', () => {
    it('finishes the save before the response, so the request after a redirect sees the data', async () => {
      const app = appWith(new SlowSavingStore(150))
      app.post('/add', (req, res) => {
        ;(req.session as unknown as Data).added = 'yes'
        res.redirect(303, '/read')
      })
      const agent = request.agent(app)
      const res = await agent.post('/add').redirects(1)
      expect(res.body.data).toEqual({ added: 'yes' })
    })

    it('saves nothing when the response is a 5xx', async () => {
      const store = new CountingStore()
      const app = appWith(store)
      app.post('/fail', (req, res) => {
        ;(req.session as unknown as Data).half = 'done'
        res.status(503).end('try later')
      })
      const res = await request(app).post('/fail')
      expect(res.status).toBe(503)
      expect(setCookies(res)).toEqual([])
      expect(store.calls.save).toBe(0)
    })

    it('handles a streamed response (write, then end) without losing bytes, and saves', async () => {
      const store = new MemoryStore()
      const app = appWith(store)
      app.get('/stream', async (req, res) => {
        ;(req.session as unknown as Data).streamed = true
        res.write('first,')
        await sleep(10)
        res.write(Buffer.from('second,'))
        res.end('third', 'utf8')
      })
      const res = await request(app).get('/stream')
      expect(res.text).toBe('first,second,third')
      const cookie = cookiePair(sessionCookie(res))
      expect((await request(app).get('/read').set('Cookie', cookie)).body.data).toEqual({
        streamed: true,
      })
    })

    it('keeps the body of the first res.end() when the app calls res.end() again while the save runs', async () => {
      const store = new CountingStore()
      const app = appWith(store)
      app.get('/twice', (req, res) => {
        ;(req.session as unknown as Data).x = 1
        res.setHeader('Content-Type', 'text/plain')
        res.end('Hello, world!')
        res.end()
      })
      const res = await request(app).get('/twice')
      expect([res.status, res.text, res.headers['content-type']]).toEqual([
        200,
        'Hello, world!',
        'text/plain',
      ])
      expect(store.calls.save).toBe(1)
      expect(sessionCookie(res)).toBeDefined()
    })

    it('treats an empty req.url as "/"', async () => {
      // A bare http server: Express would route on the empty url.
      const middleware = session(new MemoryStore(), { secret: SECRET, saveUninitialized: true })
      const server = createServer((req, res) => {
        req.url = ''
        middleware(req, res, () => res.end(typeof (req as { session?: unknown }).session))
      })
      const res = await request(server).get('/')
      expect(res.text).toBe('object')
      expect(sessionCookie(res)).toBeDefined()
    })

    it('with resave, an explicit save() leaves nothing for the end of the request unless something changed after it', async () => {
      const store = new CountingStore()
      const app = appWith(store, { resave: true })
      app.post('/save-first', async (req, res) => {
        ;(req.session as unknown as Data).hit = true
        await req.session.save()
        if (req.query.more) (req.session as unknown as Data).more = true
        res.end('saved')
      })
      const cookie = cookiePair(sessionCookie(await request(app).post('/save-first')))
      expect(store.calls.save).toBe(1)
      await request(app).post('/save-first').set('Cookie', cookie)
      expect(store.calls.save).toBe(2)
      await request(app).post('/save-first?more=1').set('Cookie', cookie)
      expect(store.calls.save).toBe(4)
      expect((await request(app).get('/read').set('Cookie', cookie)).body.data).toEqual({
        hit: true,
        more: true,
      })
    })

    it('calls the res.end callback, and passes through every form of res.end', async () => {
      const app = appWith(new SlowSavingStore(20))
      let called = 0
      let allCalled!: () => void
      const threeCalls = new Promise<void>((resolve) => (allCalled = resolve))
      const onEnd = () => {
        if (++called === 3) allCalled()
      }
      app.get('/cb', (req, res) => {
        ;(req.session as unknown as Data).x = 1
        res.end(onEnd)
      })
      app.get('/cb-chunk', (req, res) => {
        ;(req.session as unknown as Data).x = 1
        res.end('chunk', onEnd)
      })
      app.get('/cb-encoding', (req, res) => {
        ;(req.session as unknown as Data).x = 1
        res.end('68656c6c6f', 'hex', onEnd)
      })
      expect((await request(app).get('/cb')).text).toBe('')
      expect((await request(app).get('/cb-chunk')).text).toBe('chunk')
      expect((await request(app).get('/cb-encoding')).text).toBe('hello')
      await threeCalls // each callback runs at 'finish', which may follow the client's read
      expect(called).toBe(3)
    })

    it('answers HEAD and 304 Not Modified normally', async () => {
      const app = appWith(new MemoryStore())
      app.get('/etag', (req, res) => {
        ;(req.session as unknown as Data).seen = true
        res.send('stable body')
      })
      const first = await request(app).get('/etag')
      const cookie = cookiePair(sessionCookie(first))
      const head = await request(app).head('/etag').set('Cookie', cookie)
      expect(head.status).toBe(200)
      const notModified = await request(app)
        .get('/etag')
        .set('Cookie', cookie)
        .set('If-None-Match', first.headers.etag!)
      expect(notModified.status).toBe(304)
      expect(notModified.text).toBe('')
    })

    it('keeps Set-Cookie headers the app set itself', async () => {
      const app = appWith(new MemoryStore())
      app.get('/both', (req, res) => {
        res.cookie('theme', 'dark')
        ;(req.session as unknown as Data).a = 1
        res.end()
      })
      const names = setCookies(await request(app).get('/both')).map((c) => c.split('=')[0])
      expect(names).toEqual(['theme', 'connect.sid'])
    })

    it('leaves an inner session() alone when an outer one already ran', async () => {
      const store = new CountingStore()
      const app = express()
      const middleware: RequestHandler = session(store, { secret: SECRET })
      app.use(middleware, middleware)
      app.get('/', (req, res) => {
        ;(req.session as unknown as Data).a = 1
        res.end()
      })
      await request(app).get('/')
      expect(store.calls.save).toBe(1)
    })
  })

  describe('expiry', () => {
    const clock = useFakeDate()
    // Closed after each test: a sweep timer left running would read the faked Date later.
    const stores: MemoryStore[] = []
    const memory = () => {
      const store = new MemoryStore()
      stores.push(store)
      return store
    }
    afterEach(async () => {
      for (const store of stores.splice(0)) await store.close()
    })

    it('ends a session at its idle timeout, and a touch on each request keeps it alive', async () => {
      const app = appWith(memory(), { cookie: { maxAge: 400 } })
      const cookie = cookiePair(sessionCookie(await request(app).post('/set/a/1')))
      for (let i = 0; i < 3; i++) {
        clock.advance(200)
        expect((await request(app).get('/read').set('Cookie', cookie)).body.data).toEqual({
          a: '1',
        })
      }
      clock.advance(600)
      expect((await request(app).get('/read').set('Cookie', cookie)).body.data).toEqual({})
    })

    it('ends a session at its absolute timeout however active it is, and caps the cookie there', async () => {
      const app = appWith(memory(), {
        absoluteTimeout: 700,
        rolling: true,
        cookie: { maxAge: 60_000 },
      })
      const first = await request(app).post('/set/a/1')
      const expires = Date.parse(attribute(sessionCookie(first)!, 'Expires') as string)
      expect(expires).toBeLessThanOrEqual(clock.now() + 1000)
      const cookie = cookiePair(sessionCookie(first))
      clock.advance(300)
      expect((await request(app).get('/read').set('Cookie', cookie)).body.data).toEqual({ a: '1' })
      clock.advance(600)
      const late = await request(app).get('/read').set('Cookie', cookie)
      expect(late.body.data).toEqual({})
      expect(late.body.id).not.toBe(first.body.id)
    })

    it('uses idleTimeout on the server for browser-session cookies', async () => {
      const store = memory()
      const app = appWith(store, { idleTimeout: 300 })
      const first = await request(app).post('/set/a/1')
      expect((await store.load(storedId(first.body.id, SECRET)))?.idleTimeout).toBe(300)
      clock.advance(299)
      expect(await store.load(storedId(first.body.id, SECRET))).not.toBeNull()
      clock.advance(1)
      expect(await store.load(storedId(first.body.id, SECRET))).toBeNull()
    })

    it('rolling: true re-sends the cookie with a fresh expiry on every response', async () => {
      const app = appWith(memory(), { rolling: true, cookie: { maxAge: 60_000 } })
      const first = sessionCookie(await request(app).post('/set/a/1'))!
      clock.advance(1100) // Expires has a resolution of one second
      const second = sessionCookie(
        await request(app).get('/read').set('Cookie', cookiePair(first)),
      )!
      expect(cookiePair(second)).toBe(cookiePair(first))
      expect(Date.parse(attribute(second, 'Expires') as string)).toBeGreaterThan(
        Date.parse(attribute(first, 'Expires') as string),
      )
    })
  })
})

describe('an app that replaces req.session with a plain object', () => {
  it('is treated as unset: no crash, the stored session is kept', async () => {
    const store = new MemoryStore()
    const app = express5()
    app.use(session(store, { secret: SECRET }))
    app.post('/set', (req, res) => {
      ;(req.session as unknown as Data).a = 1
      res.json({ id: req.session.id })
    })
    app.post('/replace', (req, res) => {
      ;(req as { session: unknown }).session = { a: 2 }
      res.end('replaced')
    })
    const first = await request(app).post('/set')
    const res = await request(app)
      .post('/replace')
      .set('Cookie', cookiePair(sessionCookie(first)))
    expect(res.status).toBe(200)
    expect((await store.load(storedId(first.body.id, SECRET)))?.data).toEqual({ a: '1' })
  })
})
