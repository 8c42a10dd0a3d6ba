/**
 * What a client is told against what happened, with real faults, through each client:
 * - a save answered with an error never lands later: Redis hung (SIGSTOP) and resumed, or
 *   killed and restarted, while saves were on their way;
 * - through the middleware under SIGSTOP: no 503 request's change is present afterwards, every
 *   200 request's change is.
 * Two app processes on one Redis are in redis-processes.test.ts, and the middleware under every
 * fault class in redis-middleware-faults.test.ts.
 */
import { randomUUID } from 'node:crypto'
import express from 'express'
import Redis from 'ioredis'
import session from '../../entries/index'
import { StoreError } from '../../lib/store'
import { RedisStore } from '../../entries/redis'
import { newChange } from '../store-conformance'
import { CLIENT_KINDS, TestClients, send } from '../support/redis-clients'
import { testPrefix } from '../support/redis-server'
import { jsonErrors, serve } from '../support/serve'

jest.setTimeout(90_000)

const clients = new TestClients()
afterAll(async () => {
  await clients.closeAll()
})

const start = (port?: number) => clients.server(port)

async function rejection(promise: Promise<unknown>): Promise<StoreError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(StoreError)
  return err as StoreError
}

/** Reads a key's hash with a connection of its own. */
async function hashOf(url: string, key: string): Promise<Record<string, string>> {
  const inspector = new Redis(url)
  try {
    return await inspector.hgetall(key)
  } finally {
    inspector.disconnect()
  }
}

for (const kind of CLIENT_KINDS) {
  describe(`RedisStore on ${kind}: a save answered with an error never lands later`, () => {
    it('Redis hung (SIGSTOP) while a save was sent: it times out, and is refused when Redis resumes', async () => {
      const server = await start()
      const client = await clients.single(kind, server.url)
      const prefix = testPrefix('ghost')
      const store = new RedisStore({ client, prefix, timeout: 5000 })
      const id = randomUUID()
      await store.save(id, newChange({ set: { cart: '["tea"]' } }))

      server.pause()
      let err: StoreError
      try {
        // The caller's deadline, sooner than the store's own timeout, is the one that counts.
        err = await rejection(
          store.save(
            id,
            newChange({
              set: { cart: '["tea","jam"]' },
              expectedVersion: 1,
              deadline: Date.now() + 300,
            }),
          ),
        )
      } finally {
        server.resume()
      }
      expect(err.code).toBe('ETIMEDOUT')
      // A command sent after the save on the same connection is answered after the save ran.
      await send(client, ['PING'])
      const stored = await hashOf(server.url, prefix + id)
      expect(stored.cart).toBe('["tea"]')
      expect(stored['@version']).toBe('1')
    })

    it('Redis killed while a create waited in the client queue: the restarted server refuses it', async () => {
      const server = await start()
      const client = await clients.single(kind, server.url)
      const prefix = testPrefix('ghost-kill')
      // The connection is up and the scripts are known: warmed through a store with the default
      // bound, so a loaded machine cannot fail the set-up; only the save under test has 300 ms.
      await new RedisStore({ client, prefix }).save(randomUUID(), newChange())
      const store = new RedisStore({ client, prefix, timeout: 300 })

      await server.stop()
      // Wait until the client has seen the connection go, so the create waits in its queue.
      const ready = () =>
        client instanceof Redis
          ? client.status === 'ready'
          : (client as unknown as { isReady: boolean }).isReady
      while (ready()) await new Promise((resolve) => setTimeout(resolve, 10))
      const id = randomUUID()
      expect((await rejection(store.save(id, newChange({ set: { a: '1' } })))).code).toBe(
        'ETIMEDOUT',
      )
      await start(server.port)
      // The client sends its queue on reconnect, in order; this PING comes after the create.
      for (let attempt = 0; ; attempt++) {
        try {
          await send(client, ['PING'])
          break
        } catch (e) {
          if (attempt > 200) throw e
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      }
      expect(await hashOf(server.url, prefix + id)).toEqual({})
    })

    it('refuses at once, sending nothing, a save whose deadline has already passed', async () => {
      const client = await clients.single(kind)
      const prefix = testPrefix('late')
      const store = new RedisStore({ client, prefix })
      const id = randomUUID()
      const err = await rejection(
        store.save(id, newChange({ set: { a: '1' }, deadline: Date.now() - 1 })),
      )
      expect(err.code).toBe('ETIMEDOUT')
      expect(err.message).toMatch(/was not sent: its deadline had passed/)
      expect(await store.load(id)).toBeNull()
      // A deadline in time is no obstacle.
      expect(
        await store.save(id, newChange({ set: { a: '2' }, deadline: Date.now() + 60_000 })),
      ).toEqual({ ok: true, version: 1 })
    })
  })

  describe(`session() over RedisStore on ${kind}, Redis hung (SIGSTOP) mid-request`, () => {
    it('answers every request within its bound; no 503 change is present afterwards, every 200 change is', async () => {
      const server = await start()
      const store = new RedisStore({
        client: await clients.single(kind, server.url),
        prefix: testPrefix('hang-http'),
        timeout: 1000,
      })
      const gates = new Map<string, () => void>()
      const arrived = new Map<string, () => void>()
      const app = express()
      app.use(session(store, { secret: 'hang-secret' }))
      app.post('/cart/add/:item', async (req, res) => {
        const item = req.params.item!
        if (item.startsWith('held-')) {
          await new Promise<void>((resolve) => {
            gates.set(item, resolve)
            arrived.get(item)!()
          })
        }
        ;(req.session.cart ??= { items: [] }).items.push(item)
        res.json({ ok: true })
      })
      app.get('/cart', (req, res) => res.json({ items: req.session.cart?.items ?? [] }))
      jsonErrors(app)
      const http = await serve(app)
      const { base } = http
      const add = async (item: string, cookie?: string) => {
        const started = Date.now()
        const res = await fetch(`${base}/cart/add/${item}`, {
          method: 'POST',
          headers: cookie ? { cookie } : {},
        })
        return {
          item,
          status: res.status,
          ms: Date.now() - started,
          cookie: res.headers.get('set-cookie')?.split(';')[0],
        }
      }
      try {
        const first = await add('first')
        const cookie = first.cookie!
        const before = await Promise.all(
          Array.from({ length: 10 }, (_, i) => add(`ok-${i}`, cookie)),
        )
        expect(before.map((r) => r.status)).toEqual(Array(10).fill(200))

        // Five requests load the session, then wait in the handler while Redis hangs.
        const held = Array.from({ length: 5 }, (_, i) => `held-${i}`)
        const loaded = held.map(
          (item) => new Promise<void>((resolve) => arrived.set(item, resolve)),
        )
        const heldResponses = held.map((item) => add(item, cookie))
        await Promise.all(loaded)
        server.pause()
        let during: Awaited<ReturnType<typeof add>>[]
        try {
          for (const item of held) gates.get(item)!()
          during = await Promise.all([
            ...heldResponses,
            ...Array.from({ length: 3 }, (_, i) => add(`during-${i}`, cookie)),
          ])
        } finally {
          server.resume()
        }
        for (const r of during) {
          expect(r.status).toBe(503)
          expect(r.ms).toBeLessThan(15_000) // 1 s bound (queued saves fail at once), with room for load
        }

        // Redis ran what queued up while it hung; none of it may have landed.
        const cart = await (async () => {
          for (let attempt = 0; ; attempt++) {
            const res = await fetch(`${base}/cart`, { headers: { cookie } })
            if (res.status === 200) return ((await res.json()) as { items: string[] }).items
            if (attempt > 100) throw new Error(`GET /cart kept failing: ${res.status}`)
            await new Promise((resolve) => setTimeout(resolve, 100))
          }
        })()
        expect(new Set(cart)).toEqual(new Set(['first', ...before.map((r) => r.item)]))
      } finally {
        await http.close()
      }
    })
  })
}

declare module '../../lib/session.js' {
  interface SessionData {
    cart: { items: string[] }
  }
}
