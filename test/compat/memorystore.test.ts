/**
 * memorystore (an LRU with TTLs) built on the drop-in's own Store, and on express-session's:
 * the Store conformance suite and the concurrency suite through the adapter, and the TTL it
 * reads from cookie.maxAge.
 */
import express, { type Request } from 'express'
import request from 'supertest'
import dropIn, { adaptLegacyStore, Store } from '../../lib/compat/index.js'
import { describeMiddlewareOverStore } from '../middleware-store-suite.js'
import { describeStore } from '../store-conformance.js'
import { createMemoryStore, expressSession } from './support/modules.js'

const SECRET = 'memorystore-secret'
/** memorystore's class, extending the drop-in's Store: `require('memorystore')(session)`. */
const MemoryStore = createMemoryStore(dropIn)
const s = (req: Request) => req.session as unknown as Record<string, any>

describeStore('adapted memorystore', async () => adaptLegacyStore(new MemoryStore({ checkPeriod: 60_000 })))
describeMiddlewareOverStore('adapted memorystore', async () => adaptLegacyStore(new MemoryStore({ checkPeriod: 60_000 })))

describe('memorystore through the drop-in', () => {
  it("extends the drop-in's Store, and one built on express-session's Store works the same", async () => {
    expect(new MemoryStore()).toBeInstanceOf(Store)
    for (const store of [new MemoryStore(), new (createMemoryStore(expressSession))()]) {
      const app = express()
      app.use(dropIn({ secret: SECRET, store, resave: false, saveUninitialized: false }) as never)
      app.get('/', (req, res) => {
        s(req).views = (s(req).views ?? 0) + 1
        res.json(s(req).views)
      })
      const first = await request(app).get('/')
      const cookie = ([] as string[]).concat(first.headers['set-cookie'] ?? [])[0]!.split(';')[0]!
      expect((await request(app).get('/').set('Cookie', cookie)).body).toBe(2)
      expect(await new Promise((resolve) => store.length!((_err: unknown, n: number) => resolve(n)))).toBe(1)
    }
  })

  it("gets its TTL from the session's cookie, as it did under express-session", async () => {
    const store = new MemoryStore()
    const app = express()
    app.use(dropIn({ secret: SECRET, store, resave: false, saveUninitialized: false, cookie: { maxAge: 300 } }) as never)
    app.get('/', (req, res) => {
      s(req).views = (s(req).views ?? 0) + 1
      res.json({ id: req.sessionID })
    })
    const { id } = (await request(app).get('/')).body as { id: string }
    // lru-cache's entry: e is its expiry in epoch ms.
    const entry = (store.store.dump() as Array<{ k: string; e: number }>).find((e) => e.k === id)!
    expect(entry.e - Date.now()).toBeGreaterThan(0)
    expect(entry.e - Date.now()).toBeLessThanOrEqual(300)
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect(await adaptLegacyStore(store).load(id)).toBeNull()
  })
})
