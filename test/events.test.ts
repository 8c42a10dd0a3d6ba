/**
 * Lifecycle events (`onEvent`): which requests emit which event, ids only as keyed hashes, and a
 * listener that throws or rejects never failing a request.
 */
import express from 'express'
import request from 'supertest'
import session, {
  deriveIdHashKey,
  hashSessionId,
  MemoryStore,
  type SessionEvent,
  type SessionOptions,
  type Store,
} from '../entries/index'
import { SessionEvents } from '../lib/events'
import { IdHashCache } from '../lib/id-hash-cache'
import { useFakeDate } from './support/clock'
import { cookiePair, sessionCookie } from './support/http'

type Cart = { cart?: string[] }

const SECRET = 'events-test-secret'
const HOUR = 3_600_000
const KEY = deriveIdHashKey(SECRET)

function appWith(store: Store, options: SessionOptions = {}) {
  const app = express()
  app.use(session(store, { secret: SECRET, ...options }))
  app.post('/cart', (req, res) => {
    ;(req.session as unknown as Cart).cart = ['tea']
    res.json({ id: req.session.id })
  })
  app.post('/login', async (req, res) => {
    await req.session.regenerate({ keepData: true })
    req.session.setUser('ada')
    res.json({ id: req.session.id })
  })
  app.post('/logout', async (req, res) => {
    await req.session.destroy()
    res.end('bye')
  })
  app.post('/unset', (req, res) => {
    ;(req as { session: unknown }).session = null
    res.end('unset')
  })
  app.get('/id', (req, res) =>
    res.json({ id: req.session.id, cart: (req.session as unknown as Cart).cart ?? null }),
  )
  return app
}

/** A session with a cart: its raw id and the Cookie header that carries it. */
async function startSession(app: express.Express): Promise<{ id: string; cookie: string }> {
  const res = await request(app).post('/cart').expect(200)
  return { id: (res.body as { id: string }).id, cookie: cookiePair(sessionCookie(res)) }
}

function recorder(): { events: SessionEvent[]; onEvent: (event: SessionEvent) => void } {
  const events: SessionEvent[] = []
  return { events, onEvent: (event) => void events.push(event) }
}

describe('lifecycle events', () => {
  it('a new session emits created once, with the keyed hash of its id and never the id', async () => {
    const { events, onEvent } = recorder()
    const app = appWith(new MemoryStore(), { onEvent })
    const { id, cookie } = await startSession(app)
    await request(app).post('/cart').set('Cookie', cookie).expect(200)
    expect(events).toEqual([
      { type: 'created', sessionId: hashSessionId(id, KEY), at: expect.any(Number) },
    ])
    expect(hashSessionId(id, KEY)).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(JSON.stringify(events)).not.toContain(id)
  })

  it('a session that is never saved emits nothing', async () => {
    const { events, onEvent } = recorder()
    await request(appWith(new MemoryStore(), { onEvent })).get('/id').expect(200)
    expect(events).toEqual([])
  })

  it('regenerate emits regenerated from the old hash to the new one, and no created', async () => {
    const { events, onEvent } = recorder()
    const app = appWith(new MemoryStore(), { onEvent })
    const { id, cookie } = await startSession(app)
    const res = await request(app).post('/login').set('Cookie', cookie).expect(200)
    const next = (res.body as { id: string }).id
    expect(next).not.toBe(id)
    expect(events.map((e) => e.type)).toEqual(['created', 'regenerated'])
    expect(events[1]).toEqual({
      type: 'regenerated',
      sessionId: hashSessionId(next, KEY),
      previousSessionId: hashSessionId(id, KEY),
      at: expect.any(Number),
    })
  })

  it('destroy emits destroyed with the owner; unset: destroy does too', async () => {
    const { events, onEvent } = recorder()
    const app = appWith(new MemoryStore(), { onEvent, unset: 'destroy' })
    const first = await startSession(app)
    const login = await request(app).post('/login').set('Cookie', first.cookie).expect(200)
    const loggedIn = (login.body as { id: string }).id
    await request(app)
      .post('/logout')
      .set('Cookie', cookiePair(sessionCookie(login)))
      .expect(200)
    const second = await startSession(app)
    await request(app).post('/unset').set('Cookie', second.cookie).expect(200)
    expect(events.filter((e) => e.type === 'destroyed')).toEqual([
      {
        type: 'destroyed',
        sessionId: hashSessionId(loggedIn, KEY),
        userId: 'ada',
        at: expect.any(Number),
      },
      { type: 'destroyed', sessionId: hashSessionId(second.id, KEY), at: expect.any(Number) },
    ])
  })

  it('destroying a session that was never saved emits nothing', async () => {
    const { events, onEvent } = recorder()
    await request(appWith(new MemoryStore(), { onEvent })).post('/logout').expect(200)
    expect(events).toEqual([])
  })

  it('store.destroyByUser emits signedOutEverywhere with the count', async () => {
    const { events, onEvent } = recorder()
    const store = new MemoryStore()
    const app = appWith(store, { onEvent })
    await request(app).post('/login').expect(200)
    await request(app).post('/login').expect(200)
    expect(await store.destroyByUser('ada')).toBe(2)
    expect(events.at(-1)).toEqual({
      type: 'signedOutEverywhere',
      userId: 'ada',
      count: 2,
      at: expect.any(Number),
    })
  })

  it('idHashKey keys the hash; a different key gives a different hash', async () => {
    const { events, onEvent } = recorder()
    const key = Buffer.from('a secret hash key')
    const { id } = await startSession(appWith(new MemoryStore(), { onEvent, idHashKey: key }))
    expect(events[0]).toMatchObject({ type: 'created', sessionId: hashSessionId(id, key) })
    expect(hashSessionId(id, key)).not.toBe(hashSessionId(id, KEY))
  })

  it('rejects an onEvent that is not a function and an idHashKey that is not a key', () => {
    const store = new MemoryStore()
    expect(() => session(store, { secret: SECRET, onEvent: 'log' as never })).toThrow(
      /onEvent must be a function, got string/,
    )
    expect(() => session(store, { secret: SECRET, idHashKey: Buffer.alloc(0) })).toThrow(
      /idHashKey must be a string or a non-empty Buffer.*got an empty Buffer/,
    )
    expect(() => session(store, { secret: SECRET, idHashKey: 42 as never })).toThrow(
      /idHashKey must be a string or a non-empty Buffer.*got 42/,
    )
  })

  describe('expiry', () => {
    const clock = useFakeDate()

    it('a session found idle past its expiry at load emits expired (seenAt load)', async () => {
      const { events, onEvent } = recorder()
      const app = appWith(new MemoryStore(), { onEvent, cookie: { maxAge: HOUR } })
      const { id, cookie } = await startSession(app)
      clock.advance(HOUR + 1)
      const res = await request(app).get('/id').set('Cookie', cookie).expect(200)
      expect((res.body as { cart: unknown }).cart).toBeNull()
      expect(events.at(-1)).toEqual({
        type: 'expired',
        sessionId: hashSessionId(id, KEY),
        seenAt: 'load',
        at: expect.any(Number),
      })
    })

    it("a store's sweep emits expired (seenAt prune) with the owner", async () => {
      const { events, onEvent } = recorder()
      const store = new MemoryStore()
      const app = appWith(store, { onEvent, cookie: { maxAge: HOUR } })
      const res = await request(app).post('/login').expect(200)
      clock.advance(HOUR + 1)
      store.sweep()
      expect(events.at(-1)).toEqual({
        type: 'expired',
        sessionId: hashSessionId((res.body as { id: string }).id, KEY),
        seenAt: 'prune',
        userId: 'ada',
        at: expect.any(Number),
      })
    })

    it('a save that meets the absolute timeout emits expired (seenAt save) and ends the session', async () => {
      const { events, onEvent } = recorder()
      const store = new MemoryStore()
      const app = express()
      app.use(session(store, { secret: SECRET, onEvent, absoluteTimeout: HOUR }))
      app.post('/cart', (req, res) => {
        ;(req.session as unknown as Cart).cart = ['tea']
        res.json({ id: req.session.id })
      })
      app.post('/slow', (req, res) => {
        clock.advance(2) // the request outlives the absolute timeout between its load and its save
        ;(req.session as unknown as Cart).cart = ['tea', 'cake']
        res.end('late')
      })
      const first = await request(app).post('/cart').expect(200)
      const id = (first.body as { id: string }).id
      clock.advance(HOUR - 1)
      await request(app)
        .post('/slow')
        .set('Cookie', cookiePair(sessionCookie(first)))
        .expect(200)
      expect(events.at(-1)).toEqual({
        type: 'expired',
        sessionId: hashSessionId(id, KEY),
        seenAt: 'save',
        at: expect.any(Number),
      })
      expect(await store.load(id)).toBeNull()
    })
  })

  describe('a failing listener', () => {
    let warn: jest.SpiedFunction<typeof process.emitWarning>
    beforeEach(() => {
      warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined)
    })
    afterEach(() => {
      warn.mockRestore()
    })

    it.each([
      [
        'throws',
        () => {
          throw new Error('audit log down')
        },
      ],
      ['rejects', () => Promise.reject(new Error('audit log down'))],
    ])('that %s never fails a request, and warns once', async (_how, listener) => {
      const app = appWith(new MemoryStore(), { onEvent: listener })
      const { cookie } = await startSession(app)
      await request(app).post('/login').set('Cookie', cookie).expect(200)
      const res = await request(app).post('/cart').expect(200)
      expect(sessionCookie(res)).toBeDefined()
      // A rejection is seen a few ticks later.
      await new Promise((resolve) => setImmediate(resolve))
      const ours = warn.mock.calls.filter(
        ([, options]) =>
          (options as { code?: string } | undefined)?.code === 'CONCORD_SESSION_EVENT_LISTENER',
      )
      expect(ours).toHaveLength(1)
      expect(String(ours[0]![0])).toMatch(
        /onEvent listener failed on a "created" event \(audit log down\)/,
      )
    })
  })

  it('renewed carries the old and new hashes (the hook id renewal calls)', () => {
    const { events, onEvent } = recorder()
    new SessionEvents(onEvent, new IdHashCache(KEY)).renewed('old-id', 'new-id', 'ada')
    expect(events).toEqual([
      {
        type: 'renewed',
        sessionId: hashSessionId('new-id', KEY),
        previousSessionId: hashSessionId('old-id', KEY),
        userId: 'ada',
        at: expect.any(Number),
      },
    ])
  })
})
