/**
 * RedisStore's options and its data in Redis, through each client it accepts: the hash layout,
 * the TTL, the user index, what a save writes, and data it cannot read. Stored data is checked
 * with a separate ioredis connection, so the assertions do not go through the client under test.
 */
import { createHmac, randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import express from 'express'
import Redis, { Cluster } from 'ioredis'
import { createClient, createCluster } from 'redis'
import session from '../../entries/index'
import { StoreError } from '../../lib/store'
import { RedisStore } from '../../entries/redis'
import { newChange } from '../store-conformance'
import { CLIENT_KINDS, TestClients } from '../support/redis-clients'
import { redisUrl, testPrefix } from '../support/redis-server'

const HOUR = 3_600_000
const clients = new TestClients()
/** The inspector: reads and plants data behind the store's back. */
const client = new Redis(redisUrl())
client.on('error', () => {})

afterAll(async () => {
  await clients.closeAll()
  client.disconnect()
})

describe('RedisStore options', () => {
  it('accepts ioredis Redis and Cluster, node-redis clients and clusters, without connecting them', () => {
    const ioredis = new Redis({ lazyConnect: true })
    const ioCluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true })
    const nodeRedis = createClient({ url: redisUrl() })
    const nodeCluster = createCluster({ rootNodes: [{ url: 'redis://127.0.0.1:1' }] })
    for (const accepted of [ioredis, ioCluster, nodeRedis, nodeCluster]) {
      expect(new RedisStore({ client: accepted as never })).toBeInstanceOf(RedisStore)
    }
    // The cluster kinds are told apart from single servers: legacyPrefix must then equal prefix.
    for (const cluster of [ioCluster, nodeCluster]) {
      expect(
        () => new RedisStore({ client: cluster as never, prefix: 'new:', legacyPrefix: 'sess:' }),
      ).toThrow(/on a Redis Cluster legacyPrefix must equal prefix/)
      expect(
        () => new RedisStore({ client: cluster as never, prefix: 'sess:', legacyPrefix: 'sess:' }),
      ).not.toThrow()
    }
    for (const single of [ioredis, nodeRedis]) {
      expect(
        () => new RedisStore({ client: single as never, prefix: 'new:', legacyPrefix: 'sess:' }),
      ).not.toThrow()
    }
  })

  it('rejects anything else as client with a TypeError that says what is accepted', () => {
    const accepted =
      /client must be an ioredis Redis or Cluster, or a node-redis v5 client from createClient\(\) or cluster from createCluster\(\)/
    expect(() => new RedisStore({} as never)).toThrow(TypeError)
    expect(() => new RedisStore({} as never)).toThrow(accepted)
    expect(() => new RedisStore(undefined as never)).toThrow(/pass an options object with a client/)
    expect(() => new RedisStore({ client: {} as never })).toThrow(accepted)
    expect(() => new RedisStore({ client: 'redis://127.0.0.1:6379' as never })).toThrow(
      /got string/,
    )
    expect(() => new RedisStore({ client: new Map() as never })).toThrow(
      /got an object of class Map/,
    )
    // A node-redis multi or a bare connection options object is not a client.
    expect(() => new RedisStore({ client: { url: redisUrl() } as never })).toThrow(accepted)
  })

  it('rejects an empty prefix, a bad timeout and an ioredis keyPrefix, saying what to do', () => {
    const nodeRedis = createClient({ url: redisUrl() })
    for (const c of [new Redis({ lazyConnect: true }), nodeRedis]) {
      expect(() => new RedisStore({ client: c as never, prefix: '' })).toThrow(
        /prefix must be a non-empty string/,
      )
      expect(() => new RedisStore({ client: c as never, legacyPrefix: '' })).toThrow(
        /legacyPrefix must be a non-empty string/,
      )
      expect(() => new RedisStore({ client: c as never, timeout: 0 })).toThrow(
        /timeout must be a positive number of ms/,
      )
      expect(() => new RedisStore({ client: c as never, timeout: Number.NaN })).toThrow(
        /timeout must be a positive number of ms/,
      )
    }
    const prefixed = new Redis(redisUrl(), { keyPrefix: 'app:', lazyConnect: true })
    expect(() => new RedisStore({ client: prefixed })).toThrow(
      /keyPrefix set; remove it and pass the store's prefix option/,
    )
  })
})

for (const kind of CLIENT_KINDS) {
  describe(`RedisStore layout on ${kind}`, () => {
    const prefix = testPrefix('layout')
    let store: RedisStore
    beforeAll(async () => {
      store = new RedisStore({ client: await clients.single(kind), prefix })
    })
    afterAll(() => store.clear())

    it('keeps one readable hash per session: user keys as JSON fields, metadata in @ fields, TTL at expiresAt', async () => {
      const id = randomUUID()
      const now = Date.now()
      await store.save(
        id,
        newChange({
          set: { cart: '{"items":["tea"]}', '@mine': '1', '@@two': '2' },
          cookie: { originalMaxAge: HOUR },
          createdAt: now,
          expiresAt: now + HOUR,
          userId: 'u-42',
        }),
      )
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
      expect((await store.load(id))?.data).toEqual({
        cart: '{"items":["tea"]}',
        '@mine': '1',
        '@@two': '2',
      })
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
      await store.save(
        id,
        newChange({ createdAt: now, expiresAt: now + 60_000, idleTimeout: HOUR }),
      )
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
      expect((await client.smembers(`${prefix}user:${user}`)).sort()).toEqual(
        [expiring, live].sort(),
      )
      await store.touch(expiring, Date.now() - 1) // expired: Redis drops the hash, the index keeps the id
      expect(await store.listByUser(user)).toEqual([live])
      expect(await client.smembers(`${prefix}user:${user}`)).toEqual([live])
    })

    it('indexes a new owner before the session names it, and filters a session that changed owner', async () => {
      const [first, second] = [`user-${randomUUID()}`, `user-${randomUUID()}`]
      const id = randomUUID()
      await store.save(id, newChange({ userId: first }))
      expect(await store.save(id, newChange({ userId: second, expectedVersion: 1 }))).toEqual({
        ok: true,
        version: 2,
      })
      expect(await client.sismember(`${prefix}user:${second}`, id)).toBe(1)
      expect(await store.listByUser(first)).toEqual([])
      // Signing the first user out everywhere leaves the session the second user now owns.
      expect(await store.destroyByUser(first)).toBe(0)
      expect((await store.load(id))?.userId).toBe(second)
    })

    it('count and clear see only keys of the session shape under the prefix', async () => {
      const prefix2 = testPrefix('shape')
      const own = new RedisStore({ client: await clients.single(kind), prefix: prefix2 })
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

  describe(`RedisStore on ${kind} with data it cannot read`, () => {
    const prefix = testPrefix('corrupt')
    let store: RedisStore
    beforeAll(async () => {
      store = new RedisStore({ client: await clients.single(kind), prefix })
    })
    afterAll(async () => {
      await store.clear()
      await client.unlink(`${prefix}string-session`)
    })

    async function fails(promise: Promise<unknown>): Promise<StoreError> {
      const err = await promise.then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(StoreError)
      expect((err as StoreError).status).toBe(503)
      return err as StoreError
    }

    it('hands a user field that is not JSON to the core as it is, which answers 503 naming the key', async () => {
      const id = randomUUID()
      await store.save(id, newChange({ set: { cart: '[]' } }))
      await client.hset(prefix + id, 'cart', '{not json')
      // The store does not parse user fields (the core parses each once).
      expect((await store.load(id))?.data).toEqual({ cart: '{not json' })
      const app = express()
      app.use((req, _res, next) => {
        req.headers.cookie = `connect.sid=${encodeURIComponent(`s:${sign(id)}`)}`
        next()
      })
      app.use(session(store, { secret: 'corrupt-secret' }))
      app.get('/', (_req, res) => res.send('never'))
      app.use(
        (
          err: StoreError,
          _req: express.Request,
          res: express.Response,
          _next: express.NextFunction,
        ) => {
          res.status(err.status).json({ code: err.code, message: err.message })
        },
      )
      const http = app.listen(0, '127.0.0.1')
      await new Promise((resolve) => http.once('listening', resolve))
      try {
        const res = await fetch(`http://127.0.0.1:${(http.address() as AddressInfo).port}/`)
        expect(res.status).toBe(503)
        const body = (await res.json()) as { code: string; message: string }
        expect(body.code).toBe('ECORRUPT')
        expect(body.message).toContain('"cart"')
      } finally {
        await new Promise((resolve) => http.close(resolve))
      }
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
      expect((await fails(store.load(id))).message).toMatch(
        /@createdAt should be a time in epoch ms, found "yesterday"/,
      )
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
}

function sign(id: string): string {
  return `${id}.${createHmac('sha256', 'corrupt-secret').update(id).digest('base64').replace(/=+$/, '')}`
}
