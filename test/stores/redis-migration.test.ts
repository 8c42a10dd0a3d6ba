/**
 * Moving from express-session + connect-redis: sessions that real connect-redis 9 (with the
 * node-redis v5 client) wrote through real express-session are read by RedisStore with
 * `legacyPrefix`, keep their users signed in, and become hashes on their first save. In one
 * step: the same node-redis client object, the same `sess:` keys, a changed import.
 */
import { randomUUID } from 'node:crypto'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import Redis from 'ioredis'
import { createClient } from 'redis'
import session from '../../entries/index'
import { StoreError } from '../../lib/store'
import { adaptLegacyStore } from '../../lib/compat/adapted-store'
import { RedisStore, type RedisClient } from '../../entries/redis'
import { newChange } from '../store-conformance'
import { CLIENT_KINDS } from '../support/redis-clients'
import { storedId } from '../support/at-rest'
import { redisUrl, startRedisServer, testPrefix } from '../support/redis-server'

// express-session and connect-redis ship no types of their own; they are used as plain JS here.
const expressSession = require('express-session') as (options: object) => express.RequestHandler
const { RedisStore: ConnectRedisStore } = require('connect-redis') as {
  RedisStore: new (options: { client: unknown; prefix: string }) => {
    set(id: string, sess: object): Promise<void>
    get(id: string): Promise<Record<string, unknown> | null>
  }
}

const SECRET = 'the same secret in both apps'
const HOUR = 3_600_000

type Legacy = InstanceType<typeof ConnectRedisStore>

const nodeRedis = createClient({ url: redisUrl() })
nodeRedis.on('error', () => {})
const client = new Redis(redisUrl())
client.on('error', () => {})
const servers: Server[] = []

beforeAll(async () => {
  await nodeRedis.connect()
})
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  await nodeRedis.close()
  await client.quit()
})

async function listen(app: express.Express): Promise<string> {
  const server = app.listen(0, '127.0.0.1')
  servers.push(server)
  await new Promise((resolve) => server.once('listening', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** A session written by real connect-redis, as express-session would hand it over. */
async function legacySession(
  legacy: Legacy,
  data: Record<string, unknown>,
  maxAge = HOUR,
): Promise<string> {
  const id = randomUUID()
  await legacy.set(id, {
    cookie: {
      originalMaxAge: maxAge,
      expires: new Date(Date.now() + maxAge).toISOString(),
      httpOnly: true,
      path: '/',
    },
    ...data,
  })
  return id
}

describe('switching from connect-redis 9 in one step', () => {
  it('keeps the node-redis client and the sess: keys: change the import, add legacyPrefix, nobody is logged out', async () => {
    // A Redis of its own, so both stores can use their real default prefix, sess:.
    const server = await startRedisServer()
    const shared = createClient({ url: server.url })
    shared.on('error', () => {})
    await shared.connect()
    try {
      const before = express()
      before.use(
        expressSession({
          store: new ConnectRedisStore({ client: shared } as never),
          secret: SECRET,
          resave: false,
          saveUninitialized: false,
          cookie: { maxAge: HOUR },
        }),
      )
      before.post('/login/:name', (req, res) => {
        const s = (req as unknown as { session: Record<string, unknown> }).session
        s.user = { name: req.params.name, roles: ['customer'] }
        s.cart = { items: ['tea'] }
        res.json({ ok: true })
      })
      const oldBase = await listen(before)
      const users = ['Ada', 'Grace', 'Edsger']
      const cookies = await Promise.all(
        users.map(async (name) => {
          const login = await fetch(`${oldBase}/login/${name}`, { method: 'POST' })
          // express-session holds back the body's last byte until its store write is done.
          await login.text()
          return login.headers.get('set-cookie')!.split(';')[0]!
        }),
      )
      const keys = (await shared.keys('*')).sort()
      expect(keys).toHaveLength(3)
      for (const key of keys) expect(key).toMatch(/^sess:/)

      // The one step: the same client object, RedisStore instead of connect-redis, legacyPrefix.
      const store = new RedisStore({ client: shared, legacyPrefix: 'sess:' })
      const after = express()
      after.use(session(store, { secret: SECRET, cookie: { maxAge: HOUR } }))
      after.get('/me', (req, res) =>
        res.json({ user: req.session.user ?? null, cart: req.session.cart ?? null }),
      )
      after.post('/cart/add/:item', (req, res) => {
        req.session.cart!.items.push(req.params.item as string)
        res.json({ ok: true })
      })
      const newBase = await listen(after)

      for (const [i, cookie] of cookies.entries()) {
        const me = await fetch(`${newBase}/me`, { headers: { cookie } })
        expect(me.status).toBe(200)
        expect(me.headers.get('set-cookie')).toBeNull() // same session, same cookie: nobody signs in again
        expect(await me.json()).toEqual({
          user: { name: users[i], roles: ['customer'] },
          cart: { items: ['tea'] },
        })
      }
      // The first read moved each session under the keyed hash of its id: no raw id is left.
      const moved = (await shared.keys('*')).sort()
      expect(moved).toHaveLength(3)
      for (const key of moved) expect(keys).not.toContain(key)
      expect(await Promise.all(moved.map((key) => shared.type(key)))).toEqual([
        'hash',
        'hash',
        'hash',
      ])
      expect(
        (
          await fetch(`${newBase}/cart/add/jam`, {
            method: 'POST',
            headers: { cookie: cookies[0]! },
          })
        ).status,
      ).toBe(200)
      expect((await shared.keys('*')).sort()).toEqual(moved)
      expect(
        await (await fetch(`${newBase}/me`, { headers: { cookie: cookies[0]! } })).json(),
      ).toEqual({
        user: { name: 'Ada', roles: ['customer'] },
        cart: { items: ['tea', 'jam'] },
      })
      expect(await store.count()).toBe(3)
    } finally {
      await shared.close()
      await server.stop()
    }
  })
})

describe('switching from express-session + connect-redis', () => {
  it('keeps users signed in with the same cookie name and secret, and moves each session under its keyed hash on its first load', async () => {
    const prefix = testPrefix('migrate')
    const before = express()
    before.use(
      expressSession({
        store: new ConnectRedisStore({ client: nodeRedis, prefix }),
        secret: SECRET,
        resave: false,
        saveUninitialized: false,
        cookie: { maxAge: HOUR },
      }),
    )
    before.post('/login', (req, res) => {
      const s = (req as unknown as { session: Record<string, unknown> }).session
      s.user = { name: 'Ada', roles: ['admin'] }
      s.cart = { items: ['tea'] }
      res.json({ ok: true })
    })
    const oldBase = await listen(before)
    const login = await fetch(`${oldBase}/login`, { method: 'POST' })
    await login.text() // the body's last byte follows express-session's store write
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!
    expect(cookie).toMatch(/^connect\.sid=s%3A/)
    const id = decodeURIComponent(cookie.slice('connect.sid='.length)).slice(2).split('.')[0]!
    expect(await client.type(prefix + id)).toBe('string')
    // express-session computes originalMaxAge as expires minus a later Date.now(), so it can be a
    // millisecond short of maxAge; the moved session keeps what express-session stored.
    const stored = JSON.parse((await client.get(prefix + id))!) as {
      cookie: { originalMaxAge: number }
    }
    const originalMaxAge = stored.cookie.originalMaxAge
    expect(HOUR - originalMaxAge).toBeLessThan(1000)

    const store = new RedisStore({ client, prefix, legacyPrefix: prefix })
    const after = express()
    after.use(session(store, { secret: SECRET, cookie: { maxAge: HOUR }, rolling: true }))
    after.get('/me', (req, res) =>
      res.json({
        id: req.session.id,
        user: req.session.user ?? null,
        cart: req.session.cart ?? null,
      }),
    )
    after.post('/cart/add/:item', (req, res) => {
      req.session.cart!.items.push(req.params.item as string)
      res.json({ ok: true })
    })
    const newBase = await listen(after)

    const me = await fetch(`${newBase}/me`, { headers: { cookie } })
    expect(me.status).toBe(200)
    expect(await me.json()).toEqual({
      id,
      user: { name: 'Ada', roles: ['admin'] },
      cart: { items: ['tea'] },
    })
    // The first read moved it under the keyed hash of its id, as a hash, at version 1.
    expect(await client.type(prefix + id)).toBe('none')
    const key = prefix + storedId(id, SECRET)
    expect(await client.hget(key, '@version')).toBe('1')

    expect(
      (await fetch(`${newBase}/cart/add/scones`, { method: 'POST', headers: { cookie } })).status,
    ).toBe(200)
    expect(await client.type(key)).toBe('hash')
    expect(await client.hgetall(key)).toMatchObject({
      user: '{"name":"Ada","roles":["admin"]}',
      cart: '{"items":["tea","scones"]}',
      '@version': '2',
      '@idleTimeout': String(originalMaxAge),
    })
    const ttl = await client.pttl(key)
    expect(ttl).toBeGreaterThan(HOUR - 60_000)
    expect(ttl).toBeLessThanOrEqual(HOUR)

    const again = await fetch(`${newBase}/me`, { headers: { cookie } })
    expect(await again.json()).toEqual({
      id,
      user: { name: 'Ada', roles: ['admin'] },
      cart: { items: ['tea', 'scones'] },
    })
    await store.clear()
  })
})

for (const kind of CLIENT_KINDS)
  describe(`RedisStore on ${kind} reading connect-redis sessions`, () => {
    const prefix = testPrefix('legacy')
    const legacy = new ConnectRedisStore({ client: nodeRedis, prefix })
    /** The client under test; `client` (ioredis) inspects. */
    const storeClient = kind === 'ioredis' ? client : (nodeRedis as unknown as RedisClient)
    const store = new RedisStore({ client: storeClient, prefix, legacyPrefix: prefix })
    afterAll(() => store.clear())

    it('reads a legacy session as version 1, with its data as JSON text and its maxAge as idle period', async () => {
      const id = await legacySession(legacy, { n: 1, nested: { a: [1, 2] } }, 2 * HOUR)
      const record = await store.load(id)
      expect(record).toMatchObject({
        data: { n: '1', nested: '{"a":[1,2]}' },
        cookie: { originalMaxAge: 2 * HOUR },
        idleTimeout: 2 * HOUR,
        version: 1,
      })
      expect(record!.expiresAt).toBeGreaterThan(Date.now() + 2 * HOUR - 60_000)
      expect(record!.userId).toBeUndefined()
    })

    it('takes over a session the drop-in adapter wrote through connect-redis: owner, creation time and cookie kept', async () => {
      const adapted = adaptLegacyStore(legacy as never)
      const id = randomUUID()
      const createdAt = Date.now() - 60_000
      await adapted.save(
        id,
        newChange({
          set: { cart: '{"items":["tea"]}' },
          cookie: { originalMaxAge: 2 * HOUR },
          createdAt,
          expiresAt: Date.now() + 2 * HOUR,
          idleTimeout: 2 * HOUR,
          userId: 'ann',
        }),
      )
      const record = await store.load(id)
      expect(record).toMatchObject({
        data: { cart: '{"items":["tea"]}' },
        cookie: { originalMaxAge: 2 * HOUR },
        createdAt,
        idleTimeout: 2 * HOUR,
        userId: 'ann',
        version: 1,
      })
      expect(Object.keys(record!.data)).toEqual(['cart'])
      expect(
        await store.save(
          id,
          newChange({ set: { visits: '1' }, createdAt, userId: 'ann', expectedVersion: 1 }),
        ),
      ).toEqual({ ok: true, version: 2 })
      expect(await store.listByUser('ann')).toEqual([id])
    })

    it('renews a legacy session: converted to a hash first, then moved; a legacy id is taken', async () => {
      const id = await legacySession(legacy, { n: 1 }, 2 * HOUR)
      const other = await legacySession(legacy, { n: 2 }, 2 * HOUR)
      const grace = { now: Date.now(), graceMs: 10 * 60_000 }
      expect(await store.renew(id, other, grace)).toEqual({ ok: false, reason: 'taken' })
      expect((await store.load(other))?.data).toEqual({ n: '2' })
      const newId = randomUUID()
      expect(await store.renew(id, newId, grace)).toEqual({ ok: true })
      // The conversion is a save (version 2); the move keeps it.
      expect(await store.load(newId)).toMatchObject({
        data: { n: '1' },
        version: 2,
        renewedAt: grace.now,
        idleTimeout: 2 * HOUR,
      })
      expect(await client.type(prefix + id)).toBe('zset')
      expect((await store.load(id))?.renewedTo).toBe(newId)
    })

    it('touches a legacy session in the same call, as express-session would', async () => {
      const id = await legacySession(legacy, { n: 1 }, 10_000)
      const touchAt = Date.now()
      expect((await store.load(id, { touchAt }))?.expiresAt).toBe(touchAt + 10_000)
      expect(await client.call('PEXPIRETIME', prefix + id)).toBe(touchAt + 10_000)
      expect(await client.type(prefix + id)).toBe('string')
    })

    it('keeps the version check across the conversion: of two first saves, one wins and one gets a conflict', async () => {
      const id = await legacySession(legacy, { n: 0, keep: 'me' })
      const results = await Promise.all([
        store.save(id, newChange({ set: { n: '1' }, expectedVersion: 1 })),
        store.save(id, newChange({ set: { n: '2' }, expectedVersion: 1 })),
      ])
      expect(results.filter((r) => r.ok)).toEqual([{ ok: true, version: 2 }])
      const lost = results.find((r) => !r.ok)
      if (!lost || lost.ok || lost.reason !== 'conflict')
        throw new Error(`expected a conflict, got ${JSON.stringify(results)}`)
      expect(lost.current.version).toBe(2)
      expect(lost.current.data.keep).toBe('"me"')
      expect(await store.save(id, newChange({ expectedVersion: 1 }))).toMatchObject({
        ok: false,
        reason: 'conflict',
      })
    })

    it('applies a save onto what the string holds now, if the old app rewrote it since the load', async () => {
      const id = await legacySession(legacy, { a: 1 })
      await store.load(id)
      // An express-session instance still running writes the session again.
      await legacy.set(id, {
        cookie: { originalMaxAge: HOUR, expires: new Date(Date.now() + HOUR).toISOString() },
        a: 1,
        fromOldApp: true,
      })
      expect(
        await store.save(id, newChange({ set: { b: '2' }, unset: ['a'], expectedVersion: 1 })),
      ).toEqual({ ok: true, version: 2 })
      expect((await store.load(id))?.data).toEqual({ fromOldApp: 'true', b: '2' })
    })

    it('treats a create on a legacy id as a conflict, and indexes an owner given on conversion', async () => {
      const id = await legacySession(legacy, { a: 1 })
      const created = await store.save(id, newChange({ set: { a: '2' } }))
      expect(created).toMatchObject({
        ok: false,
        reason: 'conflict',
        current: { version: 1, data: { a: '1' } },
      })
      const user = `user-${randomUUID()}`
      expect(await store.save(id, newChange({ userId: user, expectedVersion: 1 }))).toEqual({
        ok: true,
        version: 2,
      })
      expect(await store.listByUser(user)).toEqual([id])
      expect((await store.load(id))?.data).toEqual({ a: '1' })
    })

    it('keeps a legacy key named __proto__ an ordinary key through the conversion', async () => {
      const id = randomUUID()
      await client.set(
        prefix + id,
        '{"cookie":{"originalMaxAge":60000},"__proto__":{"polluted":true}}',
        'PX',
        60_000,
      )
      expect(Object.keys((await store.load(id))!.data)).toEqual(['__proto__'])
      expect(
        await store.save(
          id,
          newChange({
            set: JSON.parse('{"__proto__":"{\\"again\\":true}","a":"1"}'),
            expectedVersion: 1,
          }),
        ),
      ).toEqual({ ok: true, version: 2 })
      expect((await store.load(id))!.data).toEqual(
        JSON.parse('{"__proto__":"{\\"again\\":true}","a":"1"}'),
      )
      expect(await client.hget(prefix + id, '__proto__')).toBe('{"again":true}')
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    })

    it('counts, destroys and clears legacy sessions too', async () => {
      const own = testPrefix('legacy-count')
      const ownLegacy = new ConnectRedisStore({ client: nodeRedis, prefix: own })
      const ownStore = new RedisStore({ client: storeClient, prefix: own, legacyPrefix: own })
      const [a, b] = [
        await legacySession(ownLegacy, { a: 1 }),
        await legacySession(ownLegacy, { b: 1 }),
      ]
      await ownStore.save(randomUUID(), newChange())
      expect(await ownStore.count()).toBe(3)
      await ownStore.destroy(a)
      expect(await ownStore.load(a)).toBeNull()
      expect(await ownLegacy.get(a)).toBeNull()
      expect(await ownStore.count()).toBe(2)
      await ownStore.clear()
      expect(await ownStore.count()).toBe(0)
      expect(await ownLegacy.get(b)).toBeNull()
    })

    it('names the key when a legacy session is not JSON, and without legacyPrefix reports the string', async () => {
      const id = randomUUID()
      await client.set(prefix + id, '{"cookie":', 'PX', 60_000)
      const err = await store.load(id).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(StoreError)
      expect((err as StoreError).message).toContain(
        `${prefix + id} holds data it cannot read: the connect-redis session is not JSON`,
      )

      const valid = await legacySession(legacy, { a: 1 })
      const strict = new RedisStore({ client: storeClient, prefix })
      await expect(strict.load(valid)).rejects.toThrow(/it is a Redis string, not a session hash/)
    })

    it('moves sessions to a new prefix on a single server: read from legacyPrefix, written under prefix', async () => {
      const oldPrefix = testPrefix('old')
      const newPrefix = testPrefix('new')
      const oldLegacy = new ConnectRedisStore({ client: nodeRedis, prefix: oldPrefix })
      const moving = new RedisStore({
        client: storeClient,
        prefix: newPrefix,
        legacyPrefix: oldPrefix,
      })
      const id = await legacySession(oldLegacy, { cart: { items: ['tea'] } })
      expect((await moving.load(id))?.data).toEqual({ cart: '{"items":["tea"]}' })
      expect(
        await moving.save(
          id,
          newChange({ set: { cart: '{"items":["tea","jam"]}' }, expectedVersion: 1 }),
        ),
      ).toEqual({ ok: true, version: 2 })
      expect(await client.exists(oldPrefix + id)).toBe(0)
      expect(await client.hget(newPrefix + id, 'cart')).toBe('{"items":["tea","jam"]}')
      expect(await moving.count()).toBe(1)
      await moving.clear()
    })
  })

declare module '../../lib/session.js' {
  interface SessionData {
    user: { name: string; roles: string[] }
    cart: { items: string[] }
  }
}
