/**
 * Saves of one session in one process: they queue and write as batches, replayed in memory
 * onto this process's own last save, so they meet no conflict in the store; another process's
 * write still does. The save deadline, and failing fast while the store is down.
 */
import express from 'express'
import type { AddressInfo } from 'node:net'
import request from 'supertest'
import session, { MemoryStore, StoreError, type Store } from '../entries/index'
import { BatchQueue } from '../lib/keyed-queue'
import { cookiePair, sessionCookie } from './support/http'
import { Gate, GatedStore } from './support/stores'

type Cart = Record<string, number>

function appOver(store: Store, options: { saveTimeout?: number } = {}) {
  /** Requests for an item wait at its gate after the session loaded. */
  const held = new Map<string, Gate>()
  /** Called once the response for an item has ended: its save is queued by then. */
  const ended = new Map<string, () => void>()
  const app = express()
  app.use(session(store, { secret: 'save-queue-secret', ...options }))
  app.post('/add/:item', async (req, res) => {
    await held.get(req.params.item!)?.pass()
    const data = req.session as unknown as { cart?: Cart }
    const cart = (data.cart ??= {})
    cart[req.params.item!] = 1
    res.json({ ok: true })
    ended.get(req.params.item!)?.()
  })
  app.get('/cart', (req, res) => res.json((req.session as unknown as { cart?: Cart }).cart ?? {}))
  app.use(
    (
      err: StoreError,
      _req: express.Request,
      res: express.Response,
      _next: express.NextFunction,
    ) => {
      res.status(err.status ?? 500).json({ code: err.code, message: err.message })
    },
  )
  return { app, held, ended }
}

/** Sends the request now (supertest starts on then()). */
const send = (test: request.Test) => test.then((res) => res)

function endedPromise(ended: Map<string, () => void>, item: string): Promise<void> {
  return new Promise((resolve) => ended.set(item, resolve))
}

async function seed(app: express.Express): Promise<string> {
  return cookiePair(sessionCookie(await request(app).post('/add/seed')))
}

describe('saves of one session in one process', () => {
  it("replay onto this process's own newer save in memory: no conflict reaches the store", async () => {
    const store = new GatedStore()
    const { app, held } = appOver(store)
    const cookie = await seed(app)
    const [gateA, gateB] = [new Gate(), new Gate()]
    held.set('a', gateA).set('b', gateB)
    const a = send(request(app).post('/add/a').set('Cookie', cookie))
    const b = send(request(app).post('/add/b').set('Cookie', cookie))
    await Promise.all([gateA.arrived(1), gateB.arrived(1)]) // both loaded version 1
    gateA.open()
    expect((await a).status).toBe(200) // saved version 2
    gateB.open()
    expect((await b).status).toBe(200) // loaded version 1: replayed onto version 2 here
    expect(store.conflicts).toBe(0)
    expect(store.saves.map((s) => s.change.expectedVersion)).toEqual([null, 1, 2])
    expect((await request(app).get('/cart').set('Cookie', cookie)).body).toEqual({
      seed: 1,
      a: 1,
      b: 1,
    })
    await store.close()
  })

  it('queued behind a running save, write together as one save, with no conflict', async () => {
    const store = new GatedStore()
    const { app, held, ended } = appOver(store)
    const cookie = await seed(app)
    const gates = { a: new Gate(), b: new Gate(), c: new Gate() }
    for (const [item, gate] of Object.entries(gates)) held.set(item, gate)
    const replies = (['a', 'b', 'c'] as const).map((item) =>
      send(request(app).post(`/add/${item}`).set('Cookie', cookie)),
    )
    await Promise.all(Object.values(gates).map((gate) => gate.arrived(1)))

    const saveGate = store.hold('save')
    gates.a.open()
    await saveGate.arrived(1) // a's save is in the store
    const queued = [endedPromise(ended, 'b'), endedPromise(ended, 'c')]
    gates.b.open()
    gates.c.open()
    await Promise.all(queued) // b and c answered the app: their saves wait behind a's
    saveGate.open()

    expect((await Promise.all(replies)).map((r) => r.status)).toEqual([200, 200, 200])
    expect(store.calls.save).toBe(3) // the seed, a, then b and c in one write
    expect(store.conflicts).toBe(0)
    expect((await request(app).get('/cart').set('Cookie', cookie)).body).toEqual({
      seed: 1,
      a: 1,
      b: 1,
      c: 1,
    })
    await store.close()
  })

  it("still meet another process's write as a conflict in the store, and keep both changes", async () => {
    const store = new GatedStore()
    const one = appOver(store)
    const two = appOver(store)
    const cookie = await seed(one.app)
    const [gateA, gateB] = [new Gate(), new Gate()]
    one.held.set('a', gateA)
    two.held.set('b', gateB)
    const a = send(request(one.app).post('/add/a').set('Cookie', cookie))
    const b = send(request(two.app).post('/add/b').set('Cookie', cookie))
    await Promise.all([gateA.arrived(1), gateB.arrived(1)])
    gateA.open()
    expect((await a).status).toBe(200)
    gateB.open()
    expect((await b).status).toBe(200)
    expect(store.conflicts).toBe(1)
    expect((await request(two.app).get('/cart').set('Cookie', cookie)).body).toEqual({
      seed: 1,
      a: 1,
      b: 1,
    })
    await store.close()
  })
})

describe('a store that stops answering', () => {
  it('gives every save a deadline saveTimeout ahead', async () => {
    const store = new GatedStore()
    const { app } = appOver(store, { saveTimeout: 1234 })
    await seed(app)
    const { change, at } = store.saves[0]!
    expect(change.deadline).toBeGreaterThan(at)
    expect(change.deadline! - at).toBeLessThanOrEqual(1234)
    await store.close()
  })

  it('fails the saves queued behind a timed-out one at once, without sending them', async () => {
    const store = new GatedStore()
    const { app, held, ended } = appOver(store)
    const cookie = await seed(app)
    const gates = { a: new Gate(), b: new Gate(), c: new Gate() }
    for (const [item, gate] of Object.entries(gates)) held.set(item, gate)
    const replies = (['a', 'b', 'c'] as const).map((item) =>
      send(request(app).post(`/add/${item}`).set('Cookie', cookie)),
    )
    await Promise.all(Object.values(gates).map((gate) => gate.arrived(1)))
    const saveGate = store.hold('save')
    gates.a.open()
    await saveGate.arrived(1)
    const queued = [endedPromise(ended, 'b'), endedPromise(ended, 'c')]
    gates.b.open()
    gates.c.open()
    await Promise.all(queued)

    // What a store does past a save's deadline: refuse it, having written nothing.
    saveGate.fail(
      new StoreError('save is past its deadline; nothing was written', { code: 'ETIMEDOUT' }),
    )
    const [a, b, c] = await Promise.all(replies)
    expect([a!.status, b!.status, c!.status]).toEqual([503, 503, 503])
    expect(a!.body.code).toBe('ETIMEDOUT')
    expect([b!.body.code, c!.body.code]).toEqual(['EUNAVAILABLE', 'EUNAVAILABLE'])
    expect(store.calls.save).toBe(2) // the seed and a: b and c never reached the store

    store.release('save')
    // The next request probes the store, finds it back, and sees that nothing landed.
    expect((await request(app).get('/cart').set('Cookie', cookie)).body).toEqual({ seed: 1 })
    expect((await request(app).post('/add/d').set('Cookie', cookie)).status).toBe(200)
    await store.close()
  })

  it("while down, lets one probe through at a time; the rest fail at once; the probe's success ends it", async () => {
    const store = new GatedStore()
    const { app } = appOver(store)
    const cookie = await seed(app)
    const failing = store.hold('load')
    const first = send(request(app).get('/cart').set('Cookie', cookie))
    await failing.arrived(1)
    failing.fail(new Error('connect ECONNREFUSED 127.0.0.1:6379'))
    expect((await first).status).toBe(503) // the store is now known to be down

    const probeGate = store.hold('load')
    const loadsBefore = store.calls.load
    const probe = send(request(app).get('/cart').set('Cookie', cookie))
    await probeGate.arrived(1)
    const others = await Promise.all(
      Array.from({ length: 4 }, () => request(app).get('/cart').set('Cookie', cookie)),
    )
    expect(others.map((r) => [r.status, r.body.code])).toEqual(
      Array.from({ length: 4 }, () => [503, 'EUNAVAILABLE']),
    )
    expect(store.calls.load).toBe(loadsBefore + 1) // only the probe reached the store

    probeGate.open()
    expect((await probe).status).toBe(200)
    store.release('load')
    const after = await Promise.all(
      Array.from({ length: 4 }, () => request(app).get('/cart').set('Cookie', cookie)),
    )
    expect(after.map((r) => r.status)).toEqual([200, 200, 200, 200])
    await store.close()
  })
})

describe('1000 distinct cart adds on one session, 50 in flight at a time', () => {
  async function addAll(bases: string[], cookie: string, n: number, inFlight: number) {
    const statuses: number[] = []
    let next = 0
    const worker = async () => {
      while (next < n) {
        const i = next++
        const res = await fetch(`${bases[i % bases.length]}/add/item-${i}`, {
          method: 'POST',
          headers: { cookie },
        })
        statuses.push(res.status)
        await res.arrayBuffer()
      }
    }
    await Promise.all(Array.from({ length: inFlight }, worker))
    return statuses
  }

  async function listen(app: express.Express) {
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
  }

  it.each([
    ['one process', 1],
    ['two processes on one store', 2],
  ])(
    '%s: 0 errors and 0 lost',
    async (_name, processes) => {
      const store = new GatedStore(new MemoryStore())
      const servers = await Promise.all(
        Array.from({ length: processes }, () => listen(appOver(store).app)),
      )
      const bases = servers.map((s) => s.base)
      const first = await fetch(`${bases[0]}/add/seed`, { method: 'POST' })
      const cookie = first.headers.get('set-cookie')!.split(';')[0]!
      const statuses = await addAll(bases, cookie, 1000, 50)
      expect(statuses.filter((s) => s !== 200)).toEqual([])
      const cart = (await (await fetch(`${bases[0]}/cart`, { headers: { cookie } })).json()) as Cart
      expect(Object.keys(cart)).toHaveLength(1001)
      if (processes === 1) expect(store.conflicts).toBe(0)
      for (const { server } of servers) {
        server.closeAllConnections()
        await new Promise((resolve) => server.close(resolve))
      }
      await store.close()
    },
    120_000,
  )
})

describe('BatchQueue', () => {
  it('runs the first item alone, then everything that arrived meanwhile as one batch, and forgets idle keys', async () => {
    const gate = new Gate()
    const batches: Array<[string, string[], boolean]> = []
    const queue = new BatchQueue<string>(async (key, items, queued) => {
      batches.push([key, items, queued])
      if (items[0] === 'a1') await gate.pass()
    })
    queue.add('a', 'a1')
    queue.add('a', 'a2')
    queue.add('a', 'a3')
    queue.add('b', 'b1')
    expect(queue.size).toBe(2)
    gate.open()
    await new Promise((resolve) => setImmediate(resolve))
    expect(batches).toEqual([
      ['a', ['a1'], false],
      ['b', ['b1'], false],
      ['a', ['a2', 'a3'], true],
    ])
    expect(queue.size).toBe(0)
  })
})
