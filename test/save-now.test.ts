/**
 * Saves answered in the calling tick (the SavesNow capability MemoryStore has): the response
 * ends in the tick that ended it, overlapping requests and another writer still lose nothing,
 * a destroyed session stays destroyed, a subclass that overrides save() is still called
 * through it, and a store that throws from saveNow answers 503 and is probed through save().
 */
import express from 'express'
import request from 'supertest'
import session, {
  MemoryStore,
  savesNow,
  type SaveResult,
  type SessionChange,
  type Store,
} from '../entries/index'
import { protectAtRest } from '../lib/protect-at-rest'
import { resolveAtRest } from '../lib/at-rest-options'
import { IdHashCache } from '../lib/id-hash-cache'
import { cookiePair, sessionCookie } from './support/http'
import { Gate } from './support/stores'

const SECRET = 'save-now-test-secret'
type Data = Record<string, unknown>

/** An app whose /add/:key waits at `gates[key]` (when set) after loading, before its change. */
function app(store: Store, gates: Record<string, Gate> = {}, ended: Record<string, boolean> = {}) {
  const app = express()
  app.use(session(store, { secret: SECRET }))
  app.post('/add/:key', async (req, res) => {
    await gates[req.params.key!]?.pass()
    ;(req.session as unknown as Data)[req.params.key!] = true
    res.end()
    ended[req.params.key!] = res.writableEnded // ended in this tick, or waiting on the save
  })
  app.post('/destroy', async (req, res) => {
    await req.session.destroy()
    res.end()
  })
  app.get('/keys', (req, res) => res.json(Object.keys(req.session).sort()))
  return app
}

/** Sends a POST now (supertest sends on `then`); resolves with its response. */
function started(agent: ReturnType<typeof request>, path: string, cookie: string) {
  return agent
    .post(path)
    .set('Cookie', cookie)
    .then((res) => res)
}

describe('saves answered in the calling tick', () => {
  it('end the response in the tick that ended it, the save done', async () => {
    const store = new MemoryStore()
    const ended: Record<string, boolean> = {}
    const agent = request(app(store, {}, ended))
    const cookie = cookiePair(sessionCookie(await agent.post('/add/a').expect(200)))
    await agent.post('/add/b').set('Cookie', cookie).expect(200)
    expect(ended).toEqual({ a: true, b: true })
    await agent.get('/keys').set('Cookie', cookie).expect(200, ['a', 'b'])
  })

  it('call a subclass that overrides save() through its override', async () => {
    class CountingSaves extends MemoryStore {
      saves = 0
      override async save(id: string, change: SessionChange): Promise<SaveResult> {
        this.saves++
        return super.save(id, change)
      }
    }
    const store = new CountingSaves()
    const ended: Record<string, boolean> = {}
    const agent = request(app(store, {}, ended))
    const cookie = cookiePair(sessionCookie(await agent.post('/add/a').expect(200)))
    await agent.post('/add/b').set('Cookie', cookie).expect(200)
    expect(store.saves).toBe(2)
    expect(ended).toEqual({ a: false, b: false }) // each response waited on its save() promise
    await agent.get('/keys').set('Cookie', cookie).expect(200, ['a', 'b'])
  })

  it('keep both changes of two requests that loaded the same version', async () => {
    const store = new MemoryStore()
    const gates = { x: new Gate(), y: new Gate() }
    const ended: Record<string, boolean> = {}
    const agent = request(app(store, gates, ended))
    const cookie = cookiePair(sessionCookie(await agent.post('/add/seed').expect(200)))
    const x = started(agent, '/add/x', cookie)
    const y = started(agent, '/add/y', cookie)
    await Promise.all([gates.x.arrived(1), gates.y.arrived(1)])
    gates.x.open()
    expect((await x).status).toBe(200)
    gates.y.open() // y loaded the version x replaced: it replays onto x's save
    expect((await y).status).toBe(200)
    expect(ended).toEqual({ seed: true, x: true, y: true }) // this process knew x's save
    await agent.get('/keys').set('Cookie', cookie).expect(200, ['seed', 'x', 'y'])
  })

  it("replay onto another writer's save it meets as a conflict", async () => {
    const store = new MemoryStore()
    const gate = new Gate()
    const ended: Record<string, boolean> = {}
    const [a, b] = [request(app(store, { slow: gate }, ended)), request(app(store))]
    const cookie = cookiePair(sessionCookie(await a.post('/add/seed').expect(200)))
    const slow = started(a, '/add/slow', cookie)
    await gate.arrived(1)
    await b.post('/add/other').set('Cookie', cookie).expect(200) // another writer saves first
    gate.open()
    expect((await slow).status).toBe(200)
    expect(ended.slow).toBe(false) // the conflict sent it through the save queue
    await a.get('/keys').set('Cookie', cookie).expect(200, ['other', 'seed', 'slow'])
  })

  it('never bring back a session destroyed while a request held it', async () => {
    const store = new MemoryStore()
    const gate = new Gate()
    const agent = request(app(store, { late: gate }))
    const cookie = cookiePair(sessionCookie(await agent.post('/add/seed').expect(200)))
    const late = started(agent, '/add/late', cookie)
    await gate.arrived(1)
    await agent.post('/destroy').set('Cookie', cookie).expect(200)
    gate.open()
    expect((await late).status).toBe(200)
    expect(await store.count()).toBe(0)
  })

  it('answer 503 when saveNow throws, probe through save(), and recover', async () => {
    class BrokenThenFixed extends MemoryStore {
      broken = false
      override saveNow(id: string, change: SessionChange): SaveResult {
        if (this.broken) throw new Error('memory is on fire')
        return super.saveNow(id, change)
      }
    }
    const store = new BrokenThenFixed()
    let asyncSaves = 0
    const save = store.save.bind(store)
    const ended: Record<string, boolean> = {}
    const gate = new Gate()
    const agent = request(app(store, { c: gate }, ended))
    const cookie = cookiePair(sessionCookie(await agent.post('/add/a').expect(200)))
    // c loads while the store is up, and saves after a failure counted it down.
    const c = started(agent, '/add/c', cookie)
    await gate.arrived(1)
    store.broken = true
    await agent.post('/add/b').set('Cookie', cookie).expect(503)
    store.broken = false
    Object.assign(store, {
      save: (id: string, change: SessionChange) => {
        asyncSaves++
        return save(id, change)
      },
    })
    gate.open()
    expect((await c).status).toBe(200)
    expect(asyncSaves).toBe(1) // the probe after the failure went through save()
    await agent.post('/add/d').set('Cookie', cookie).expect(200)
    expect(asyncSaves).toBe(1) // back up: saves are answered in the tick again
    expect(ended).toMatchObject({ a: true, c: false, d: true })
    await agent.get('/keys').set('Cookie', cookie).expect(200, ['a', 'c', 'd'])
  })

  it('are offered through protection at rest only over an in-process store', () => {
    const memory = new MemoryStore()
    const config = resolveAtRest({}, [SECRET], memory)
    const hashes = new IdHashCache(config.idHashKey)
    expect(savesNow(protectAtRest(memory, config, hashes))).toBe(true)
    // A store that saves in the tick but is shared with other processes: their renewals leave
    // notes that only an awaited load can read.
    const shared: Store & { saveNow(id: string, change: SessionChange): SaveResult } = {
      load: (id, options) => memory.load(id, options),
      save: (id, change) => memory.save(id, change),
      saveNow: (id, change) => memory.saveNow(id, change),
      touch: (id, expiresAt) => memory.touch(id, expiresAt),
      destroy: (id) => memory.destroy(id),
    }
    expect(savesNow(shared)).toBe(true)
    expect(savesNow(protectAtRest(shared, config, hashes))).toBe(false)
  })
})
