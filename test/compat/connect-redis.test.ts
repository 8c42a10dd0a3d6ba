/**
 * connect-redis 9 (with the `redis` v5 client, against the suite's own redis-server) through
 * the adapter and the drop-in: the concurrency suite, the stored format, its TTL, a deployment
 * half on express-session, the per-user index over all(), and Redis going away and back.
 */
import { randomUUID } from 'node:crypto'
import express, { type Express } from 'express'
import { createClient } from 'redis'
import request from 'supertest'
import { isCountable, isUserIndex } from '../../entries/index.js'
import dropIn, { adaptLegacyStore } from '../../entries/express-session.js'
import { describeMiddlewareOverStore } from '../middleware-store-suite.js'
import { newChange } from '../store-conformance.js'
import {
  redisUrl,
  startRedisServer,
  testPrefix,
  type RedisProcess,
} from '../support/redis-server.js'
import { cookieOf, sess as s, viewsApp as baseViewsApp } from './support/http.js'
import { expressSession, RedisStore } from './support/modules.js'

const SECRET = 'connect-redis-secret'
type Client = ReturnType<typeof createClient>

let client: Client
beforeAll(async () => {
  client = createClient({ url: redisUrl() })
  await client.connect()
})
afterAll(async () => {
  await client.close()
})

describeMiddlewareOverStore('adapted connect-redis', async () =>
  adaptLegacyStore(new RedisStore({ client, prefix: testPrefix('cr') })),
)

/** The view counter, and POST /logout. */
function viewsApp(app: Express, middleware: unknown): Express {
  baseViewsApp(app, middleware).post('/logout', (req, res) => s(req).destroy(() => res.send('bye')))
  return app
}

describe('connect-redis through the drop-in', () => {
  it("stores express-session's format, and connect-redis sets the key's TTL from cookie.expires", async () => {
    const prefix = testPrefix('cr-format')
    const app = viewsApp(
      express(),
      dropIn({
        secret: SECRET,
        store: new RedisStore({ client, prefix }),
        resave: false,
        saveUninitialized: false,
        cookie: { maxAge: 600_000 },
      }),
    )
    const first = await request(app).get('/views')
    const { id } = first.body as { id: string }
    const stored = JSON.parse((await client.get(prefix + id))!)
    expect(stored).toEqual({
      cookie: { originalMaxAge: 600_000, expires: expect.any(String), httpOnly: true, path: '/' },
      views: 1,
      __concord: {
        version: 1,
        createdAt: expect.any(Number),
        expiresAt: Date.parse(stored.cookie.expires),
        idleTimeout: 600_000,
        cookie: {},
      },
    })
    const ttl = await client.ttl(prefix + id)
    expect(ttl).toBeGreaterThan(590)
    expect(ttl).toBeLessThanOrEqual(600)
  })

  it('a read touches through connect-redis (EXPIRE) and leaves the stored session as it was', async () => {
    const prefix = testPrefix('cr-touch')
    const app = express()
    app.use(
      dropIn({
        secret: SECRET,
        store: new RedisStore({ client, prefix }),
        resave: false,
        saveUninitialized: false,
        cookie: { maxAge: 600_000 },
      }) as never,
    )
    app.post('/', (req, res) => {
      s(req).n = 1
      res.json({ id: req.sessionID })
    })
    app.get('/', (_req, res) => res.send('read'))
    const first = await request(app).post('/')
    const key = prefix + (first.body as { id: string }).id
    await client.expire(key, 100) // as if time passed
    const before = await client.get(key)
    await request(app).get('/').set('Cookie', cookieOf(first))
    expect(await client.ttl(key)).toBeGreaterThan(590)
    expect(await client.get(key)).toBe(before)
  })

  it('shares sessions with processes still on express-session, both ways (a half-migrated deployment)', async () => {
    const prefix = testPrefix('cr-mixed')
    const options = {
      secret: SECRET,
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: 600_000 },
    }
    const old = viewsApp(
      express(),
      expressSession({ ...options, store: new RedisStore({ client, prefix }) }),
    )
    const migrated = viewsApp(
      express(),
      dropIn({ ...options, store: new RedisStore({ client, prefix }) }),
    )
    const first = await request(old).get('/views')
    const cookie = cookieOf(first)
    const views: number[] = [first.body.views]
    for (const app of [migrated, old, migrated, old])
      views.push((await request(app).get('/views').set('Cookie', cookie)).body.views)
    expect(views).toEqual([1, 2, 3, 4, 5])
    // express-session writes concord's bookkeeping back untouched, so the version survives its writes.
    expect(JSON.parse((await client.get(prefix + first.body.id))!).__concord.version).toBe(2)

    await request(old).post('/logout').set('Cookie', cookie)
    const after = await request(migrated).get('/views').set('Cookie', cookie)
    expect(after.body.views).toBe(1)
    expect(after.body.id).not.toBe(first.body.id)
  })

  it("lists and signs out a user's sessions through connect-redis's all()", async () => {
    const store = adaptLegacyStore(new RedisStore({ client, prefix: testPrefix('cr-users') }))
    if (!isUserIndex(store) || !isCountable(store)) throw new Error('expected the per-user index')
    const user = `user-${randomUUID()}`
    const ids = [randomUUID(), randomUUID()]
    for (const id of ids) await store.save(id, newChange({ userId: user }))
    await store.save(randomUUID(), newChange({ userId: 'someone else' }))
    expect((await store.listByUser(user)).sort()).toEqual([...ids].sort())
    expect(await store.count()).toBe(3)
    expect(await store.destroyByUser(user)).toBe(2)
    expect(await store.listByUser(user)).toEqual([])
    expect(await store.save(ids[0]!, newChange({ expectedVersion: 1 }))).toEqual({
      ok: false,
      reason: 'gone',
    })
  })
})

describe('connect-redis when Redis goes away', () => {
  let server: RedisProcess
  let own: Client
  afterAll(async () => {
    own?.destroy()
    await server?.stop()
  })

  it("passes the client's own error while Redis is down, as express-session does, and serves again once it is back", async () => {
    server = await startRedisServer()
    // Without the offline queue a call fails at once instead of waiting for the adapter's timeout.
    own = createClient({
      url: server.url,
      disableOfflineQueue: true,
      socket: { reconnectStrategy: () => 50 },
    })
    own.on('error', () => {}) // the client reports each failed reconnect; the test watches the responses
    await own.connect()
    const app = viewsApp(
      express(),
      dropIn({
        secret: SECRET,
        store: new RedisStore({ client: own }),
        resave: false,
        saveUninitialized: false,
      }),
    )
    const cookie = cookieOf(await request(app).get('/views'))

    const port = server.port
    await server.stop()
    const down = await request(app).get('/views').set('Cookie', cookie)
    expect(down.status).toBe(500)
    expect(down.text).not.toMatch(/StoreError/)

    server = await startRedisServer({ port })
    const deadline = Date.now() + 10_000
    let status = 0
    while (Date.now() < deadline && status !== 200) {
      status = (await request(app).get('/views').set('Cookie', cookie)).status
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect(status).toBe(200)
  })
})
