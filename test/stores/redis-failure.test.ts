/**
 * RedisStore when Redis is down, through each client: at start-up, killed mid-traffic, hung
 * (SIGSTOP), and with a client that is closed, with a redis-server this file starts, stops and
 * restarts (never the suite's shared one). Calls fail within a bounded time with a 503
 * StoreError, calls after a timeout fail at once, the process carries on, and calls succeed
 * again once Redis is back.
 */
import { randomUUID } from 'node:crypto'
import express from 'express'
import Redis from 'ioredis'
import session from '../../entries/index'
import { StoreError } from '../../lib/store'
import { RedisStore } from '../../entries/redis'
import { newChange } from '../store-conformance'
import { CLIENT_KINDS, TestClients, type NodeRedis } from '../support/redis-clients'
import { freePort, testPrefix } from '../support/redis-server'
import { jsonErrors, serve } from '../support/serve'

jest.setTimeout(60_000)

const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => unhandled.push(reason)
const clientErrors: Error[] = []
const clients = new TestClients()

beforeAll(() => {
  process.on('unhandledRejection', onUnhandled)
})
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled)
  await clients.closeAll()
})

const start = (port?: number) => clients.server(port)

/** Runs `call`, expecting a 503 StoreError; returns it and how long the call took. */
async function failure(call: () => Promise<unknown>): Promise<{ err: StoreError; ms: number }> {
  const started = Date.now()
  const err = await call().then(
    () => undefined,
    (e: unknown) => e,
  )
  const ms = Date.now() - started
  expect(err).toBeInstanceOf(StoreError)
  expect((err as StoreError).status).toBe(503)
  return { err: err as StoreError, ms }
}

/** Retries `call` until it succeeds (Redis is back), for at most 20 s. */
async function eventually<T>(call: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 20_000
  for (;;) {
    try {
      return await call()
    } catch (err) {
      if (Date.now() > deadline) throw err
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

/** Calls each command ran since the server started (INFO commandstats). */
async function commandCounts(url: string): Promise<Record<string, number>> {
  const admin = new Redis(url)
  try {
    const counts: Record<string, number> = {}
    for (const m of (await admin.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
      counts[m[1]!] = Number(m[2])
    return counts
  } finally {
    admin.disconnect()
  }
}

for (const kind of CLIENT_KINDS) {
  describe(`RedisStore on ${kind} when Redis is down`, () => {
    it('at start-up: calls fail within the default timeout (2 s) with a 503, then succeed once Redis starts', async () => {
      const port = await freePort()
      const client = await clients.single(kind, `redis://127.0.0.1:${port}`, {
        noWait: true,
        onError: (e) => clientErrors.push(e),
      })
      const store = new RedisStore({ client, prefix: testPrefix('down') })
      const id = randomUUID()

      const [load, save] = await Promise.all([
        failure(() => store.load(id, { touchAt: Date.now() })),
        failure(() => store.save(id, newChange({ set: { a: '1' } }))),
      ])
      for (const { err, ms } of [load, save]) {
        expect(ms).toBeLessThan(10_000) // 2 s, with room for a loaded machine
        expect(err.code).toBe('ETIMEDOUT')
        expect(err.message).toMatch(/timed out after 2000 ms/)
      }
      expect(load.err.message).toContain('load of ')
      expect(save.err.message).toContain(id)

      await start(port)
      const other = randomUUID()
      expect(await eventually(() => store.save(other, newChange({ set: { a: '1' } })))).toEqual({
        ok: true,
        version: 1,
      })
      expect((await store.load(other))?.data).toEqual({ a: '1' })
      // The save that timed out while Redis was not there did not land when it came up.
      expect(await store.load(id)).toBeNull()
    })

    it('killed mid-traffic: concurrent calls fail within the timeout, later calls at once, and all work after a restart', async () => {
      const server = await start()
      const client = await clients.single(kind, server.url, {
        onError: (e) => clientErrors.push(e),
      })
      const store = new RedisStore({ client, prefix: testPrefix('midway'), timeout: 500 })
      const id = randomUUID()
      expect(await store.save(id, newChange({ set: { a: '1' }, userId: 'u' }))).toEqual({
        ok: true,
        version: 1,
      })

      await server.stop() // SIGKILL: no goodbye to the client
      const calls = await Promise.all([
        ...Array.from({ length: 10 }, () => failure(() => store.load(id, { touchAt: Date.now() }))),
        ...Array.from({ length: 10 }, (_, i) =>
          failure(() => store.save(id, newChange({ set: { a: String(i) }, expectedVersion: 1 }))),
        ),
        failure(() => store.touch(id, Date.now() + 1000)),
        failure(() => store.destroy(id)),
        failure(() => store.listByUser('u')),
        failure(() => store.count()),
      ])
      for (const { err, ms } of calls) {
        expect(err.message).toMatch(/^RedisStore: /)
        expect(ms).toBeLessThan(5000) // 500 ms, with room for a loaded machine
      }
      // Redis is now known to be down: a call fails at once, without waiting out its timeout.
      const fast = await failure(() => store.load(id))
      expect(fast.err.code).toBe('EUNAVAILABLE')

      // Same port, new process: the data is gone (no persistence), and so are the scripts.
      await start(server.port)
      expect(await eventually(() => store.load(id))).toBeNull()
      const fresh = randomUUID()
      expect(await store.save(fresh, newChange({ set: { b: '2' } }))).toEqual({
        ok: true,
        version: 1,
      })
      expect((await store.load(fresh, { touchAt: Date.now() }))?.data).toEqual({ b: '2' })
      expect(clientErrors.length).toBeGreaterThan(0) // the client saw the outage; our listener took it
    })

    it('hung (SIGSTOP): after one call times out the rest fail at once, one PING at a time checks, and SIGCONT recovers', async () => {
      const server = await start()
      const client = await clients.single(kind, server.url)
      const store = new RedisStore({ client, prefix: testPrefix('hung'), timeout: 500 })
      const id = randomUUID()
      await store.save(id, newChange({ set: { a: '1' } }))
      const before = await commandCounts(server.url)

      server.pause()
      try {
        expect((await failure(() => store.load(id))).err.code).toBe('ETIMEDOUT')
        const rest = await Promise.all(
          Array.from({ length: 20 }, () => failure(() => store.load(id))),
        )
        expect(rest.map(({ err }) => err.code)).toEqual(Array(20).fill('EUNAVAILABLE'))
      } finally {
        server.resume()
      }
      expect((await eventually(() => store.load(id)))?.data).toEqual({ a: '1' })
      const after = await commandCounts(server.url)
      // The 20 calls that failed at once sent nothing; the outage cost PINGs, one at a time.
      const scripts = (after.evalsha ?? 0) - (before.evalsha ?? 0)
      expect(scripts).toBeLessThanOrEqual(3) // the timed-out load, the load that succeeded, at most one retry of eventually()
      expect((after.ping ?? 0) - (before.ping ?? 0)).toBeLessThan(20)
    })

    it('through the middleware: a request fails with 503 within the bound while Redis is down, and succeeds after', async () => {
      const server = await start()
      const store = new RedisStore({
        client: await clients.single(kind, server.url),
        prefix: testPrefix('http'),
        timeout: 1000,
      })
      const app = express()
      app.use(session(store, { secret: 'failure-secret' }))
      app.post('/visit', (req, res) => {
        req.session.visits = (req.session.visits ?? 0) + 1
        res.json({ visits: req.session.visits })
      })
      jsonErrors(app)
      const http = await serve(app)
      const url = `${http.base}/visit`
      try {
        const first = await fetch(url, { method: 'POST' })
        expect(await first.json()).toEqual({ visits: 1 })
        const cookie = first.headers.get('set-cookie')!.split(';')[0]!

        await server.stop()
        const started = Date.now()
        const down = await fetch(url, { method: 'POST', headers: { cookie } })
        expect(Date.now() - started).toBeLessThan(8000)
        expect(down.status).toBe(503)
        expect(((await down.json()) as { error: string }).error).toMatch(/^RedisStore: load of /)

        await start(server.port)
        const back = await eventually(async () => {
          const res = await fetch(url, { method: 'POST', headers: { cookie } })
          if (res.status !== 200) throw new Error(`status ${res.status}`)
          return res
        })
        // The restarted server lost the data, so this is a fresh session; the point is that it works.
        expect(await back.json()).toEqual({ visits: 1 })
      } finally {
        await http.close()
      }
    })

    it('on a 3-master cluster: calls fail within the timeout while every master hangs, and work again when they resume', async () => {
      const store = new RedisStore({
        client: await clients.cluster(kind),
        prefix: testPrefix('cluster-down'),
        timeout: 500,
      })
      const ids = Array.from({ length: 6 }, () => randomUUID())
      for (const id of ids)
        expect(await store.save(id, newChange({ set: { n: '1' } }))).toEqual({
          ok: true,
          version: 1,
        })
      const masters = await clients.clusterServers()
      for (const server of masters) server.pause()
      try {
        const calls = await Promise.all([
          ...ids.map((id) => failure(() => store.load(id, { touchAt: Date.now() }))),
          ...ids.map((id) =>
            failure(() => store.save(id, newChange({ set: { n: '2' }, expectedVersion: 1 }))),
          ),
        ])
        for (const { err, ms } of calls) {
          expect(['ETIMEDOUT', 'EUNAVAILABLE']).toContain(err.code)
          expect(ms).toBeLessThan(5000) // 500 ms, with room for a loaded machine
        }
      } finally {
        for (const server of masters) server.resume()
      }
      for (const id of ids) {
        const record = await eventually(() => store.load(id))
        // The saves that failed while the masters hung did not land when they resumed.
        expect(record?.data).toEqual({ n: '1' })
        expect(record?.version).toBe(1)
      }
      expect(await store.save(ids[0]!, newChange({ set: { n: '3' }, expectedVersion: 1 }))).toEqual(
        { ok: true, version: 2 },
      )
    })

    it('fails at once with a 503 when the client is closed', async () => {
      const server = await start()
      const client = await clients.single(kind, server.url)
      if (client instanceof Redis) client.disconnect()
      else (client as unknown as NodeRedis).destroy()
      const store = new RedisStore({ client, prefix: testPrefix('closed') })
      const { err, ms } = await failure(() => store.load(randomUUID()))
      expect(ms).toBeLessThan(2000) // at once: well under the 2 s timeout
      expect(err.code).toBe('EREDIS')
      expect(err.cause).toBeInstanceOf(Error)
    })
  })
}

describe('after the outages', () => {
  it('left no unhandled rejection behind', async () => {
    // Commands that timed out are still settled later by the clients; give them a moment.
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(unhandled).toEqual([])
  })
})

declare module '../../lib/session.js' {
  interface SessionData {
    visits: number
  }
}
