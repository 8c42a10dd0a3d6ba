/**
 * RedisStore against real servers: the suite's redis-server, a 3-master Redis Cluster this file
 * starts, and a private redis-server for counting round trips. No mocks.
 */
import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import express from 'express'
import Redis, { Cluster } from 'ioredis'
import session from '../../lib/index'
import { StoreError, type Store } from '../../lib/store'
import { RedisStore } from '../../stores/redis'
import { describeMiddlewareOverStore } from '../middleware-store-suite'
import { describeStore, newChange } from '../store-conformance'
import { startRedisCluster, type RedisClusterProcess } from '../support/redis-cluster'
import { redisUrl, startRedisServer, testPrefix, type RedisProcess } from '../support/redis-server'

const HOUR = 3_600_000
const clients: (Redis | Cluster)[] = []

function connect(url = redisUrl()): Redis {
  const client = new Redis(url)
  client.on('error', () => {}) // the store leaves 'error' to its user; tests see failures through rejections
  clients.push(client)
  return client
}

let cluster: Promise<{ process: RedisClusterProcess; client: Cluster }> | undefined
/** One cluster for the whole file, started on first use. */
function clusterClient(): Promise<Cluster> {
  cluster ??= (async () => {
    const process = await startRedisCluster(3)
    const client = new Cluster(process.nodes)
    client.on('error', () => {})
    clients.push(client)
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve())
      client.once('end', () => reject(new Error('cluster client ended before ready')))
    })
    return { process, client }
  })()
  return cluster.then((c) => c.client)
}

afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())))
  if (cluster) await (await cluster).process.stop()
})

const clearAll = async (stores: Store[]) => {
  for (const store of stores) await store.clear?.()
}

describeStore('RedisStore (single server)', async () => new RedisStore({ client: connect(), prefix: testPrefix('redis') }), { cleanup: clearAll })
describeStore('RedisStore (3-master cluster)', async () => new RedisStore({ client: await clusterClient(), prefix: testPrefix('cluster') }))

describeMiddlewareOverStore('RedisStore (single server)', async () => new RedisStore({ client: connect(), prefix: testPrefix('mw') }))
describeMiddlewareOverStore('RedisStore (3-master cluster)', async () => new RedisStore({ client: await clusterClient(), prefix: testPrefix('mw-cluster') }))

describe('RedisStore options', () => {
  it('rejects a missing client, an empty prefix, a bad timeout and a client keyPrefix, saying what to do', () => {
    const client = connect()
    expect(() => new RedisStore({} as never)).toThrow(/client must be an ioredis Redis or Cluster/)
    expect(() => new RedisStore({ client: {} as never })).toThrow(/client must be an ioredis Redis or Cluster/)
    expect(() => new RedisStore({ client, prefix: '' })).toThrow(/prefix must be a non-empty string/)
    expect(() => new RedisStore({ client, legacyPrefix: '' })).toThrow(/legacyPrefix must be a non-empty string/)
    expect(() => new RedisStore({ client, timeout: 0 })).toThrow(/timeout must be a positive number of ms/)
    expect(() => new RedisStore({ client, timeout: Number.NaN })).toThrow(/timeout must be a positive number of ms/)
    const prefixed = new Redis(redisUrl(), { keyPrefix: 'app:', lazyConnect: true })
    expect(() => new RedisStore({ client: prefixed })).toThrow(/keyPrefix set; remove it and pass the store's prefix option/)
  })

  it('on a cluster, requires legacyPrefix to equal prefix', async () => {
    const client = await clusterClient()
    expect(() => new RedisStore({ client, prefix: 'new:', legacyPrefix: 'sess:' })).toThrow(/legacyPrefix must equal prefix/)
    expect(() => new RedisStore({ client, prefix: 'sess:', legacyPrefix: 'sess:' })).not.toThrow()
  })
})

describe('RedisStore layout', () => {
  const client = connect()
  const prefix = testPrefix('layout')
  const store = new RedisStore({ client, prefix })
  afterAll(() => store.clear())

  it('keeps one readable hash per session: user keys as JSON fields, metadata in @ fields, TTL at expiresAt', async () => {
    const id = randomUUID()
    const now = Date.now()
    await store.save(id, newChange({
      set: { cart: '{"items":["tea"]}', '@mine': '1', '@@two': '2' },
      cookie: { originalMaxAge: HOUR },
      createdAt: now,
      expiresAt: now + HOUR,
      userId: 'u-42',
    }))
    expect(await client.type(prefix + id)).toBe('hash')
    expect(await client.hgetall(prefix + id)).toEqual({
      cart: '{"items":["tea"]}',
      '@@mine': '1',
      '@@@two': '2',
      '@version': '1',
      '@createdAt': String(now),
      '@expiresAt': String(now + HOUR),
      '@idleTimeout': String(HOUR),
      '@cookie': '{"originalMaxAge":3600000}',
      '@userId': 'u-42',
    })
    expect(await client.call('PEXPIRETIME', prefix + id)).toBe(now + HOUR)
    expect(await client.smembers(`${prefix}user:u-42`)).toEqual([id])
    expect((await store.load(id))?.data).toEqual({ cart: '{"items":["tea"]}', '@mine': '1', '@@two': '2' })
  })

  it('keeps a key named __proto__ an ordinary field', async () => {
    const id = randomUUID()
    await store.save(id, newChange({ set: JSON.parse('{"__proto__":"{\\"polluted\\":true}"}') }))
    expect(await client.hget(prefix + id, '__proto__')).toBe('{"polluted":true}')
    expect(Object.keys((await store.load(id))!.data)).toEqual(['__proto__'])
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('moves the key TTL with a touch on load and with touch()', async () => {
    const id = randomUUID()
    const now = Date.now()
    await store.save(id, newChange({ createdAt: now, expiresAt: now + 1000, idleTimeout: HOUR }))
    await store.load(id, { touchAt: now + 10 })
    expect(await client.call('PEXPIRETIME', prefix + id)).toBe(now + 10 + HOUR)
    expect(await client.hget(prefix + id, '@expiresAt')).toBe(String(now + 10 + HOUR))
    await store.touch(id, now + 2 * HOUR)
    expect(await client.call('PEXPIRETIME', prefix + id)).toBe(now + 2 * HOUR)
  })

  it('writes only the changed fields: a save leaves the other fields as they are', async () => {
    const id = randomUUID()
    await store.save(id, newChange({ set: { a: '1', b: '2', c: '3' } }))
    // Another writer's field survives a save that does not mention it.
    await client.hset(prefix + id, 'd', '"outside"')
    await store.save(id, newChange({ set: { a: '10' }, unset: ['b'], expectedVersion: 1 }))
    expect((await store.load(id))?.data).toEqual({ a: '10', c: '3', d: '"outside"' })
  })

  it('destroy removes the id from its owner index; listByUser prunes ids of expired sessions', async () => {
    const user = `user-${randomUUID()}`
    const destroyed = randomUUID()
    const expiring = randomUUID()
    const live = randomUUID()
    await store.save(destroyed, newChange({ userId: user }))
    await store.save(expiring, newChange({ userId: user }))
    await store.save(live, newChange({ userId: user }))
    await store.destroy(destroyed)
    expect((await client.smembers(`${prefix}user:${user}`)).sort()).toEqual([expiring, live].sort())
    await store.touch(expiring, Date.now() - 1) // expired: Redis drops the hash, the index keeps the id
    expect(await store.listByUser(user)).toEqual([live])
    expect(await client.smembers(`${prefix}user:${user}`)).toEqual([live])
  })

  it('indexes a new owner before the session names it, and filters a session that changed owner', async () => {
    const [first, second] = [`user-${randomUUID()}`, `user-${randomUUID()}`]
    const id = randomUUID()
    await store.save(id, newChange({ userId: first }))
    expect(await store.save(id, newChange({ userId: second, expectedVersion: 1 }))).toEqual({ ok: true, version: 2 })
    expect(await client.sismember(`${prefix}user:${second}`, id)).toBe(1)
    expect(await store.listByUser(first)).toEqual([])
    // Signing the first user out everywhere leaves the session the second user now owns.
    expect(await store.destroyByUser(first)).toBe(0)
    expect((await store.load(id))?.userId).toBe(second)
  })

  it('count and clear see only keys of the session shape under the prefix', async () => {
    const prefix2 = testPrefix('shape')
    const own = new RedisStore({ client, prefix: prefix2 })
    await own.save(randomUUID(), newChange({ userId: 'u' }))
    await client.set(`${prefix2}not:a-session`, 'x')
    await client.hset(`${prefix2}other:hash`, 'f', 'v')
    expect(await own.count()).toBe(1)
    await own.clear()
    expect(await own.count()).toBe(0)
    expect(await client.exists(`${prefix2}user:u`)).toBe(0)
    expect(await client.get(`${prefix2}not:a-session`)).toBe('x')
    expect(await client.hget(`${prefix2}other:hash`, 'f')).toBe('v')
    await client.unlink(`${prefix2}not:a-session`, `${prefix2}other:hash`)
  })
})

describe('RedisStore with data it cannot read', () => {
  const client = connect()
  const prefix = testPrefix('corrupt')
  const store = new RedisStore({ client, prefix })
  afterAll(async () => {
    await store.clear()
    await client.unlink(`${prefix}string-session`)
  })

  async function fails(promise: Promise<unknown>): Promise<StoreError> {
    const err = await promise.then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(StoreError)
    expect((err as StoreError).status).toBe(503)
    return err as StoreError
  }

  it('names the key and the field when a user field is not JSON', async () => {
    const id = randomUUID()
    await store.save(id, newChange({ set: { cart: '[]' } }))
    await client.hset(prefix + id, 'cart', '{not json')
    const err = await fails(store.load(id))
    expect(err.message).toContain(prefix + id)
    expect(err.message).toContain('"cart" is not JSON')
    expect(err.code).toBe('ECORRUPT')
  })

  it('names the key and the metadata field when metadata has the wrong type', async () => {
    const id = randomUUID()
    await store.save(id, newChange())
    await client.hset(prefix + id, '@version', 'seven')
    const err = await fails(store.load(id))
    expect(err.message).toContain(prefix + id)
    expect(err.message).toMatch(/@version should be a positive integer, found "seven"/)
    await fails(store.save(id, newChange({ expectedVersion: 7 })))

    await client.hset(prefix + id, '@version', '1', '@cookie', '[1,2]')
    expect((await fails(store.load(id))).message).toMatch(/@cookie should be a JSON object/)
    await client.hset(prefix + id, '@cookie', '{}', '@createdAt', 'yesterday')
    expect((await fails(store.load(id))).message).toMatch(/@createdAt should be a time in epoch ms, found "yesterday"/)
  })

  it('reports a key of another type instead of crashing, and keeps working afterwards', async () => {
    await client.set(`${prefix}string-session`, 'hello')
    const err = await fails(store.load('string-session'))
    expect(err.message).toContain(`${prefix}string-session`)
    expect(err.message).toContain('it is a Redis string, not a session hash')
    const id = randomUUID()
    expect(await store.save(id, newChange())).toEqual({ ok: true, version: 1 })
  })
})

describe('RedisStore on a cluster', () => {
  it('spreads sessions over the masters, and count and clear cover all of them', async () => {
    const client = await clusterClient()
    const store = new RedisStore({ client, prefix: testPrefix('spread') })
    const ids = Array.from({ length: 30 }, () => randomUUID())
    await Promise.all(ids.map((id) => store.save(id, newChange({ set: { n: '1' }, userId: 'spread-user' }))))
    const perMaster = await Promise.all(client.nodes('master').map((node) => node.dbsize()))
    expect(perMaster.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2)
    expect(await store.count()).toBe(30)
    expect((await store.listByUser('spread-user')).sort()).toEqual([...ids].sort())
    expect(await store.destroyByUser('spread-user')).toBe(30)
    expect(await store.count()).toBe(0)
    await store.clear()
  })
})

/**
 * Counts the commands one client sends, with MONITOR on a second connection, filtered by the
 * client's address: commands run inside a script show as "lua" and are not counted.
 */
async function commandCounter(url: string, client: Redis) {
  const addr = /\baddr=(\S+)/.exec(await client.client('INFO'))![1]!
  const monitor = await connect(url).monitor()
  const seen: string[][] = []
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source === addr) seen.push(args)
  })
  return {
    /** The commands `client` sent while `work` ran, by name. */
    async during(work: () => Promise<unknown>): Promise<string[]> {
      const mark = randomUUID()
      await client.echo(`start-${mark}`)
      await work()
      await client.echo(`end-${mark}`)
      const deadline = Date.now() + 5000
      while (!seen.some((args) => args[1] === `end-${mark}`)) {
        if (Date.now() > deadline) throw new Error('MONITOR did not report the end mark')
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      const start = seen.findIndex((args) => args[1] === `start-${mark}`)
      const end = seen.findIndex((args) => args[1] === `end-${mark}`)
      return seen.slice(start + 1, end).map((args) => args[0]!.toLowerCase())
    },
    stop: () => monitor.disconnect(),
  }
}

describe('RedisStore round trips, counted with MONITOR on a private redis-server', () => {
  let server: RedisProcess
  let client: Redis
  let store: RedisStore
  let counter: Awaited<ReturnType<typeof commandCounter>>

  beforeAll(async () => {
    server = await startRedisServer()
    client = connect(server.url)
    store = new RedisStore({ client, prefix: testPrefix('rt') })
    counter = await commandCounter(server.url, client)
  })
  afterAll(async () => {
    counter.stop()
    await client.quit()
    await server.stop()
  })

  it('load with touch is one command, a save is one command, and neither adds more', async () => {
    const id = randomUUID()
    const now = Date.now()
    // The first script call on a connection is an EVAL; after that, EVALSHA.
    expect(await counter.during(() => store.save(id, newChange({ set: { a: '1' }, createdAt: now, expiresAt: now + HOUR })))).toEqual(['eval'])
    expect(await counter.during(() => store.load(id, { touchAt: Date.now(), absoluteTimeout: 2 * HOUR }))).toEqual(['eval'])
    expect(await counter.during(() => store.load(id, { touchAt: Date.now() }))).toEqual(['evalsha'])
    expect(await counter.during(() => store.save(id, newChange({ set: { a: '2' }, expectedVersion: 1 })))).toEqual(['evalsha'])
    // A logged-in user's save keeps its owner: still one command.
    const owned = randomUUID()
    expect(await counter.during(() => store.save(owned, newChange({ userId: 'u1' })))).toEqual(['sadd', 'evalsha'])
    expect(await counter.during(() => store.save(owned, newChange({ set: { b: '1' }, userId: 'u1', expectedVersion: 1 })))).toEqual(['evalsha'])
    // A change of owner: the script asks for the index entry first, then writes.
    expect(await counter.during(() => store.save(owned, newChange({ userId: 'u2', expectedVersion: 2 })))).toEqual(['evalsha', 'sadd', 'evalsha'])
    // Destroying an owned session unlinks it from its owner's index with a second command.
    expect(await counter.during(() => store.destroy(owned))).toEqual(['eval', 'srem'])
    expect(await counter.during(() => store.destroy(id))).toEqual(['evalsha'])
  })

  it('after SCRIPT FLUSH (as after a restart) the script is sent again and the call still succeeds', async () => {
    const id = randomUUID()
    await store.save(id, newChange({ set: { a: '1' } }))
    await connect(server.url).script('FLUSH')
    expect(await counter.during(() => store.load(id))).toEqual(['evalsha', 'eval'])
    expect((await store.load(id))?.data).toEqual({ a: '1' })
  })

  it('through the middleware: a reading request (rolling) costs one command, a writing request two', async () => {
    const app = express()
    app.use(session(store, { secret: 'round-trip-secret', rolling: true, cookie: { maxAge: HOUR } }))
    app.get('/read', (req, res) => res.json({ n: req.session.n ?? 0 }))
    app.post('/write', (req, res) => {
      req.session.n = (req.session.n ?? 0) + 1
      res.json({ n: req.session.n })
    })
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const first = await fetch(`${base}/write`, { method: 'POST' })
      const cookie = first.headers.get('set-cookie')!.split(';')[0]!

      let read: Response | undefined
      expect(await counter.during(async () => (read = await fetch(`${base}/read`, { headers: { cookie } })))).toEqual(['evalsha'])
      expect(await read!.json()).toEqual({ n: 1 })
      expect(read!.headers.get('set-cookie')).toMatch(/^connect\.sid=s%3A/) // rolling: the cookie was renewed

      let write: Response | undefined
      expect(await counter.during(async () => (write = await fetch(`${base}/write`, { method: 'POST', headers: { cookie } })))).toEqual(['evalsha', 'evalsha'])
      expect(await write!.json()).toEqual({ n: 2 })
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
  })
})

declare module '../../lib/session.js' {
  interface SessionData {
    n: number
  }
}
