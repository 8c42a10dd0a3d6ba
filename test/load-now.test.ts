/**
 * Loads answered in the calling tick (the LoadsNow capability MemoryStore has): the session opens
 * without a promise, a subclass that overrides load() is still called through it, and a store
 * that throws from loadNow answers 503 and is probed through load() until it is back.
 */
import express from 'express'
import request from 'supertest'
import session, {
  MemoryStore,
  type LoadOptions,
  type SessionRecord,
  type Store,
} from '../entries/index'
import { cookiePair, sessionCookie } from './support/http'

const SECRET = 'load-now-test-secret'

function app(store: Store): express.Express {
  const app = express()
  app.use(session(store, { secret: SECRET }))
  app.post('/add', (req, res) => {
    const s = req.session as unknown as { n?: number }
    s.n = (s.n ?? 0) + 1
    res.json({ n: s.n })
  })
  app.get('/n', (req, res) => res.json({ n: (req.session as unknown as { n?: number }).n ?? 0 }))
  return app
}

describe('loads answered in the calling tick', () => {
  it('call a subclass that overrides load() through its override', async () => {
    class CountingLoads extends MemoryStore {
      loads = 0
      override async load(id: string, options?: LoadOptions): Promise<SessionRecord | null> {
        this.loads++
        return super.load(id, options)
      }
    }
    const store = new CountingLoads()
    const agent = request(app(store))
    const first = await agent.post('/add').expect(200, { n: 1 })
    const cookie = cookiePair(sessionCookie(first))
    await agent.get('/n').set('Cookie', cookie).expect(200, { n: 1 })
    await agent.get('/n').set('Cookie', cookie).expect(200, { n: 1 })
    expect(store.loads).toBe(2)
  })

  it('answer 503 when loadNow throws, probe through load(), and recover', async () => {
    class BrokenThenFixed extends MemoryStore {
      broken = false
      asyncLoads = 0
      override loadNow(id: string, options?: LoadOptions): SessionRecord | null {
        if (this.broken) throw new Error('memory is on fire')
        return super.loadNow(id, options)
      }
    }
    const store = new BrokenThenFixed()
    // load() is not overridden, so loadNow stays in use; count the async probes separately.
    const load = store.load.bind(store)
    const agent = request(app(store))
    const cookie = cookiePair(sessionCookie(await agent.post('/add').expect(200, { n: 1 })))
    store.broken = true
    const failed = await agent.get('/n').set('Cookie', cookie)
    expect(failed.status).toBe(503)
    store.broken = false
    Object.assign(store, {
      load: (id: string, options?: LoadOptions) => {
        store.asyncLoads++
        return load(id, options)
      },
    })
    await agent.get('/n').set('Cookie', cookie).expect(200, { n: 1 })
    expect(store.asyncLoads).toBe(1) // the probe after the failure went through load()
    await agent.post('/add').set('Cookie', cookie).expect(200, { n: 2 })
    expect(store.asyncLoads).toBe(1) // back up: loads are answered in the tick again
  })
})
