/**
 * RedisStore when Redis is down: at start-up and mid-traffic, with a redis-server this file
 * starts, kills and restarts (never the suite's shared one). Calls fail within a bounded time
 * with a 503 StoreError, the process carries on, and calls succeed again once Redis is back.
 */
import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import express, { type NextFunction, type Request, type Response } from 'express'
import Redis, { type RedisOptions } from 'ioredis'
import session from '../../lib/index'
import { StoreError } from '../../lib/store'
import { RedisStore } from '../../stores/redis'
import { newChange } from '../store-conformance'
import { freePort, startRedisServer, testPrefix, type RedisProcess } from '../support/redis-server'

const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => unhandled.push(reason)
const clientErrors: Error[] = []
const clients: Redis[] = []
const servers: RedisProcess[] = []

beforeAll(() => {
  process.on('unhandledRejection', onUnhandled)
})
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled)
  for (const client of clients) if (client.status !== 'end') client.disconnect()
  await Promise.all(servers.map((s) => s.stop()))
})

function connect(port: number, options: RedisOptions = {}): Redis {
  const client = new Redis({ host: '127.0.0.1', port, ...options })
  client.on('error', (err: Error) => clientErrors.push(err))
  clients.push(client)
  return client
}

async function start(port?: number): Promise<RedisProcess> {
  const server = await startRedisServer(port === undefined ? {} : { port })
  servers.push(server)
  return server
}

/** Runs `call`, expecting a 503 StoreError; returns it and how long the call took. */
async function failure(call: () => Promise<unknown>): Promise<{ err: StoreError; ms: number }> {
  const started = Date.now()
  const err = await call().then(() => undefined, (e: unknown) => e)
  const ms = Date.now() - started
  expect(err).toBeInstanceOf(StoreError)
  expect((err as StoreError).status).toBe(503)
  return { err: err as StoreError, ms }
}

/** Retries `call` until it succeeds (Redis is back), for at most 15 s. */
async function eventually<T>(call: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 15_000
  for (;;) {
    try {
      return await call()
    } catch (err) {
      if (Date.now() > deadline) throw err
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

describe('RedisStore when Redis is down', () => {
  it('at start-up: calls fail within the default timeout (2 s) with a 503, then succeed once Redis starts', async () => {
    const port = await freePort()
    const store = new RedisStore({ client: connect(port), prefix: testPrefix('down') })
    const id = randomUUID()

    const [load, save] = await Promise.all([
      failure(() => store.load(id, { touchAt: Date.now() })),
      failure(() => store.save(id, newChange({ set: { a: '1' } }))),
    ])
    for (const { err, ms } of [load, save]) {
      expect(ms).toBeLessThan(5000)
      expect(err.code).toBe('ETIMEDOUT')
      expect(err.message).toMatch(/timed out after 2000 ms/)
    }
    expect(load.err.message).toContain(`load of `)
    expect(save.err.message).toContain(id)

    await start(port)
    const other = randomUUID()
    expect(await eventually(() => store.save(other, newChange({ set: { a: '1' } })))).toEqual({ ok: true, version: 1 })
    expect((await store.load(other))?.data).toEqual({ a: '1' })
  })

  it('mid-traffic: concurrent calls fail within the configured timeout, and work again after a restart', async () => {
    const server = await start()
    const client = connect(server.port)
    const store = new RedisStore({ client, prefix: testPrefix('midway'), timeout: 500 })
    const id = randomUUID()
    expect(await store.save(id, newChange({ set: { a: '1' }, userId: 'u' }))).toEqual({ ok: true, version: 1 })

    await server.stop() // SIGKILL: no goodbye to the client
    const started = Date.now()
    const calls = await Promise.all([
      ...Array.from({ length: 10 }, () => failure(() => store.load(id, { touchAt: Date.now() }))),
      ...Array.from({ length: 10 }, (_, i) => failure(() => store.save(id, newChange({ set: { a: String(i) }, expectedVersion: 1 })))),
      failure(() => store.touch(id, Date.now() + 1000)),
      failure(() => store.destroy(id)),
      failure(() => store.listByUser('u')),
      failure(() => store.count()),
    ])
    expect(Date.now() - started).toBeLessThan(4000)
    for (const { err } of calls) expect(err.message).toMatch(/^RedisStore: /)

    // Same port, new process: the data is gone (no persistence), and so are the scripts.
    await start(server.port)
    expect(await eventually(() => store.load(id))).toBeNull()
    const fresh = randomUUID()
    expect(await store.save(fresh, newChange({ set: { b: '2' } }))).toEqual({ ok: true, version: 1 })
    expect((await store.load(fresh, { touchAt: Date.now() }))?.data).toEqual({ b: '2' })
    expect(clientErrors.length).toBeGreaterThan(0) // the client saw the outage; our listener took it
  })

  it('through the middleware: a request fails with 503 within the bound while Redis is down, and succeeds after', async () => {
    const server = await start()
    const store = new RedisStore({ client: connect(server.port), prefix: testPrefix('http'), timeout: 1000 })
    const app = express()
    app.use(session(store, { secret: 'failure-secret' }))
    app.post('/visit', (req, res) => {
      req.session.visits = (req.session.visits ?? 0) + 1
      res.json({ visits: req.session.visits })
    })
    app.use((err: { status?: number; message: string }, _req: Request, res: Response, _next: NextFunction) => {
      res.status(err.status ?? 500).json({ error: err.message })
    })
    const http = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => http.once('listening', resolve))
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/visit`
    try {
      const first = await fetch(url, { method: 'POST' })
      expect(await first.json()).toEqual({ visits: 1 })
      const cookie = first.headers.get('set-cookie')!.split(';')[0]!

      await server.stop()
      const started = Date.now()
      const down = await fetch(url, { method: 'POST', headers: { cookie } })
      expect(Date.now() - started).toBeLessThan(5000)
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
      await new Promise((resolve) => http.close(resolve))
    }
  })

  it('fails at once with a 503 when the client has given up reconnecting', async () => {
    const port = await freePort()
    const client = connect(port, { retryStrategy: () => null })
    await new Promise((resolve) => client.once('end', resolve))
    const store = new RedisStore({ client, prefix: testPrefix('ended') })
    const { err, ms } = await failure(() => store.load(randomUUID()))
    expect(ms).toBeLessThan(1000)
    expect(err.code).toBe('EREDIS')
    expect(err.cause).toBeInstanceOf(Error)
  })

  it('left no unhandled rejection behind', async () => {
    // Commands that timed out are still settled later by ioredis; give them a moment.
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(unhandled).toEqual([])
  })
})

declare module '../../lib/session.js' {
  interface SessionData {
    visits: number
  }
}
