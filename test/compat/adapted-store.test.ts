import { randomUUID } from 'node:crypto'
import express from 'express'
import request from 'supertest'
import mainSession from '../../entries/index.js'
import dropIn, { adaptLegacyStore, type LegacyStore } from '../../entries/express-session.js'
import { isClearable, isCountable, isUserIndex, StoreError, type Store } from '../../lib/store.js'
import { newChange } from '../store-conformance.js'
import {
  DisconnectingStore,
  DoubleCallbackStore,
  EnoentStore,
  FailingStore,
  LateCallbackStore,
  NoTouchStore,
  RejectingStore,
  SilentStore,
  SyncCallbackStore,
  ThrowingStore,
} from './support/fakes.js'
import { cookieOf } from './support/http.js'

const HOUR = 3_600_000
const SECRET = 'adapted-store-test-secret'

async function create(
  store: ReturnType<typeof adaptLegacyStore>,
  data: Record<string, unknown> = {},
  extra = {},
) {
  const id = randomUUID()
  const set = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, JSON.stringify(v)]))
  expect(await store.save(id, newChange({ set, ...extra }))).toEqual({ ok: true, version: 1 })
  return id
}

/** An app on the main entry over an adapted store, with a route that writes and one that reads. */
function appOver(store: ReturnType<typeof adaptLegacyStore>) {
  const app = express()
  app.use(mainSession(store, { secret: SECRET }))
  app.post('/write', (req, res) => {
    ;(req.session as unknown as Record<string, unknown>).n = 1
    res.send('ok')
  })
  app.get('/read', (req, res) =>
    res.json((req.session as unknown as Record<string, unknown>).n ?? null),
  )
  return app
}

describe('adaptLegacyStore: callback styles', () => {
  it.each([
    ['SyncCallbackStore (calls back in the same tick)', () => new SyncCallbackStore()],
    ['LateCallbackStore (calls back later)', () => new LateCallbackStore(5)],
    ['EnoentStore (ENOENT from get means not found)', () => new EnoentStore()],
  ])('%s: creates, loads, saves against a version and destroys', async (_name, make) => {
    const store = adaptLegacyStore(make())
    expect(await store.load(randomUUID())).toBeNull()
    const id = await create(store, { cart: ['tea'] })
    expect(await store.load(id)).toMatchObject({ data: { cart: '["tea"]' }, version: 1 })
    expect(
      await store.save(id, newChange({ set: { cart: '["tea","jam"]' }, expectedVersion: 1 })),
    ).toEqual({ ok: true, version: 2 })
    const stale = await store.save(id, newChange({ set: { cart: '[]' }, expectedVersion: 1 }))
    expect(stale).toMatchObject({
      ok: false,
      reason: 'conflict',
      current: { version: 2, data: { cart: '["tea","jam"]' } },
    })
    await store.destroy(id)
    expect(await store.save(id, newChange({ expectedVersion: 2 }))).toEqual({
      ok: false,
      reason: 'gone',
    })
    expect(await store.load(id)).toBeNull()
  })

  it('DoubleCallbackStore: the first answer stands and the second is ignored', async () => {
    const store = adaptLegacyStore(new DoubleCallbackStore())
    const id = await create(store, { a: 1 })
    expect(await store.load(id)).toMatchObject({ data: { a: '1' } })
    await new Promise((resolve) => setImmediate(resolve)) // let the second callbacks fire
    expect((await store.load(id))?.version).toBe(1)
  })
})

describe('adaptLegacyStore: failures are StoreErrors with status 503', () => {
  it('SilentStore: a store that never calls back times out', async () => {
    const legacy = new SilentStore()
    const store = adaptLegacyStore(legacy, { timeout: 50 })
    const error = await store.load(randomUUID()).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(StoreError)
    expect(error).toMatchObject({
      status: 503,
      code: 'ETIMEDOUT',
      message: expect.stringMatching(/get\(\) did not call back within 50 ms/),
    })
    legacy.silent = false
    expect(await store.load(randomUUID())).toBeNull()
  })

  it("FailingStore: the store's error is the cause; requests get 503 and recover with the store", async () => {
    const legacy = new FailingStore()
    const store = adaptLegacyStore(legacy)
    const error = await store.save(randomUUID(), newChange()).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(StoreError)
    expect(error).toMatchObject({ status: 503, cause: { code: 'ECONNREFUSED' } })

    const app = appOver(store)
    expect((await request(app).post('/write')).status).toBe(503)
    legacy.failing = false
    const ok = await request(app).post('/write')
    expect(ok.status).toBe(200)
    expect((await request(app).get('/read').set('Cookie', cookieOf(ok))).body).toBe(1)
  })

  it.each([
    [
      'ThrowingStore (throws instead of calling back)',
      () => new ThrowingStore(),
      /store is broken/,
    ],
    [
      'RejectingStore (rejects without calling back)',
      () => new RejectingStore(),
      /rejected without calling back/,
    ],
  ])('%s', async (_name, make, message) => {
    const error = await adaptLegacyStore(make(), { timeout: 1000 })
      .load(randomUUID())
      .catch((err: unknown) => err)
    expect(error).toBeInstanceOf(StoreError)
    expect((error as Error).message).toMatch(message)
  })

  it('DisconnectingStore: the adapter fails with 503 while disconnected; the drop-in, as express-session, serves without a session', async () => {
    const legacy = new DisconnectingStore()
    const store = adaptLegacyStore(legacy)
    const id = await create(store, { a: 1 })
    const app = express()
    app.use(dropIn({ secret: SECRET, store: legacy, resave: false, saveUninitialized: false }))
    app.post('/', (req, res) => {
      ;(req.session as unknown as Record<string, unknown>).n = 1
      res.send('saved')
    })
    app.get('/', (req, res) => res.send(typeof req.session))
    const cookie = cookieOf(await request(app).post('/'))

    legacy.disconnect()
    await expect(store.load(id)).rejects.toMatchObject({
      status: 503,
      code: 'EDISCONNECTED',
      message: expect.stringMatching(/disconnected/),
    })
    await expect(store.save(id, newChange({ expectedVersion: 1 }))).rejects.toMatchObject({
      code: 'EDISCONNECTED',
    })
    const down = await request(app).get('/').set('Cookie', cookie)
    expect([down.status, down.text, down.headers['set-cookie']]).toEqual([
      200,
      'undefined',
      undefined,
    ])
    expect((await request(app).get('/').set('Cookie', cookie)).status).toBe(200)
    // The main entry fails closed instead.
    const strict = express()
    strict.use(mainSession(store, { secret: SECRET }))
    strict.get('/', (_req, res) => res.send('served'))
    expect((await request(strict).get('/').set('Cookie', cookie)).status).toBe(503)

    legacy.reconnect()
    const up = await request(app).get('/').set('Cookie', cookie)
    expect([up.status, up.text]).toEqual([200, 'object'])
    expect((await store.load(id))?.data).toEqual({ a: '1' })
    await store.close!()
    expect(legacy.listenerCount('disconnect')).toBe(2) // the drop-in and its adapter still listen; this one stopped
  })
})

describe('adaptLegacyStore: versions and expiry', () => {
  it('within one adapter, exactly one of many concurrent saves at one version wins', async () => {
    const store = adaptLegacyStore(new LateCallbackStore(2))
    const id = await create(store, { n: 0 })
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        store.save(id, newChange({ set: { n: String(i) }, expectedVersion: 1 })),
      ),
    )
    expect(results.filter((r) => r.ok)).toHaveLength(1)
  })

  it('across two adapters (two processes) the check and the write are two calls: both saves can pass it (the documented limit)', async () => {
    const legacy = new LateCallbackStore(5)
    const [a, b] = [adaptLegacyStore(legacy), adaptLegacyStore(legacy)]
    const id = await create(a, { n: 0 })
    const results = await Promise.all([
      a.save(id, newChange({ set: { n: '1' }, expectedVersion: 1 })),
      b.save(id, newChange({ set: { n: '2' }, expectedVersion: 1 })),
    ])
    // Both read version 1 before either wrote. A concord store (Redis, file) would refuse one.
    expect(results).toEqual([
      { ok: true, version: 2 },
      { ok: true, version: 2 },
    ])
  })

  it('a store with touch(): a read touches through it and never rewrites the session', async () => {
    const legacy = new SyncCallbackStore()
    const store = adaptLegacyStore(legacy)
    const id = await create(store, { a: 1 })
    legacy.calls.length = 0
    const touchAt = Date.now()
    expect((await store.load(id, { touchAt }))?.expiresAt).toBe(touchAt + HOUR)
    expect(legacy.calls).toEqual([`get ${id}`, `touch ${id}`])
  })

  it('a store without touch(): the adapter keeps the expiry in the blob, rewrites it on touch, and enforces it', async () => {
    const legacy = new NoTouchStore()
    const store = adaptLegacyStore(legacy)
    const now = Date.now()
    const id = await create(
      store,
      { a: 1 },
      { createdAt: now, expiresAt: now + HOUR, idleTimeout: HOUR },
    )
    expect(await store.load(id, { touchAt: now + 50 })).toMatchObject({
      expiresAt: now + 50 + HOUR,
    })
    expect(JSON.parse(legacy.sessions.get(id)!).__concord.expiresAt).toBe(now + 50 + HOUR)
    await store.touch(id, Date.now() - 1) // expiry is "expiresAt <= now", without racing the clock
    expect(await store.load(id)).toBeNull()
    expect(legacy.sessions.has(id)).toBe(true) // expired, not yet removed: the store has no TTL
  })

  it("touching an unknown id does not create it (session-file-store's touch would)", async () => {
    const legacy = new SyncCallbackStore()
    const id = randomUUID()
    await adaptLegacyStore(legacy).touch(id, Date.now() + HOUR)
    expect(legacy.calls).toEqual([`get ${id}`])
  })

  it('forgets a session whose absolute timeout passed, when a read would touch it', async () => {
    const legacy = new SyncCallbackStore()
    const store = adaptLegacyStore(legacy)
    const id = await create(store, { a: 1 }, { createdAt: Date.now() - 10_000 })
    expect(await store.load(id, { touchAt: Date.now(), absoluteTimeout: 5_000 })).toBeNull()
    expect(legacy.sessions.has(id)).toBe(false)
  })
})

describe('adaptLegacyStore: capabilities and setup', () => {
  it('has the per-user index, count and clear only where the store has all(), length() and clear()', () => {
    const capabilities = (s: Store) => [isUserIndex(s), isCountable(s), isClearable(s)]
    const full = adaptLegacyStore(new SyncCallbackStore())
    expect(capabilities(full)).toEqual([true, true, true])
    const minimal: LegacyStore = {
      get: (_sid, cb) => cb(null, null),
      set: (_sid, _s, cb) => cb?.(),
      destroy: (_sid, cb) => cb?.(),
    }
    const bare = adaptLegacyStore(minimal)
    expect(capabilities(bare)).toEqual([false, false, false])
    const counted = adaptLegacyStore({ ...minimal, length: (cb) => cb(null, 0) })
    expect(capabilities(counted)).toEqual([false, true, false])
  })

  it('rejects what is not an express-session store, and a bad timeout, saying what to pass', () => {
    expect(() => adaptLegacyStore({} as LegacyStore)).toThrow(
      /get\(sid, cb\), set\(sid, session, cb\) and destroy\(sid, cb\)/,
    )
    expect(() => adaptLegacyStore(new SyncCallbackStore(), { timeout: 0 })).toThrow(
      /timeout must be a positive number/,
    )
  })

  it('the main session() refuses an unwrapped legacy store and names adaptLegacyStore', () => {
    expect(() => mainSession({ secret: SECRET, store: new SyncCallbackStore() as never })).toThrow(
      /adaptLegacyStore\(store\).*concord-session\/express-session/,
    )
  })
})
