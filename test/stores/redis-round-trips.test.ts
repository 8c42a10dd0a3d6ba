/**
 * Round trips of RedisStore through each client, counted with MONITOR on a private
 * redis-server: one command per read, two per writing request, and scripts that survive
 * SCRIPT FLUSH (as after a restart). Commands a script runs show as "lua" and are not counted.
 */
import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import express from 'express'
import Redis from 'ioredis'
import session from '../../entries/index'
import { RedisStore, type RedisClient } from '../../entries/redis'
import { newChange } from '../store-conformance'
import { CLIENT_KINDS, TestClients, addressOf } from '../support/redis-clients'
import { startRedisServer, testPrefix, type RedisProcess } from '../support/redis-server'

const HOUR = 3_600_000
const clients = new TestClients()

/** ECHO through the client under test, so it is ordered with the client's other commands. */
function echo(client: RedisClient, text: string): Promise<unknown> {
  return client instanceof Redis
    ? client.echo(text)
    : (client as unknown as { sendCommand(a: string[]): Promise<unknown> }).sendCommand([
        'ECHO',
        text,
      ])
}
afterAll(() => clients.closeAll())

/** Counts the commands `client` sends, with MONITOR on an ioredis connection of its own. */
async function commandCounter(url: string, client: RedisClient) {
  const addr = await addressOf(client)
  const admin = new Redis(url)
  // admin's ready check (INFO) reaches the server before MONITOR starts: a command line that
  // arrives in the same packet as MONITOR's OK is taken by ioredis for a reply.
  await admin.ping()
  const monitor = await admin.monitor()
  const seen: string[][] = []
  const inScripts: string[][] = []
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source === addr) seen.push(args)
    else if (source === 'lua') inScripts.push(args)
  })
  return {
    /** The commands `client` sent while `work` ran, by name, between two marks sent by `client`. */
    async during(
      work: () => Promise<unknown>,
      mark: (text: string) => Promise<unknown>,
    ): Promise<string[]> {
      const id = randomUUID()
      await mark(`start-${id}`)
      await work()
      await mark(`end-${id}`)
      const deadline = Date.now() + 10_000
      while (!seen.some((args) => args[1] === `end-${id}`)) {
        if (Date.now() > deadline) throw new Error('MONITOR did not report the end mark')
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      const start = seen.findIndex((args) => args[1] === `start-${id}`)
      const end = seen.findIndex((args) => args[1] === `end-${id}`)
      return seen.slice(start + 1, end).map((args) => args[0]!.toLowerCase())
    },
    /** Forgets what scripts ran so far; `scripted()` then lists what they run from here on. */
    resetScripted: () => void inScripts.splice(0),
    scripted: () => inScripts.map((args) => args.map((a, i) => (i === 0 ? a.toLowerCase() : a))),
    stop() {
      monitor.disconnect()
      admin.disconnect()
    },
  }
}

for (const kind of CLIENT_KINDS) {
  describe(`RedisStore round trips on ${kind}, counted with MONITOR`, () => {
    let server: RedisProcess
    let client: RedisClient
    let store: RedisStore
    const prefix = testPrefix('rt')
    let counter: Awaited<ReturnType<typeof commandCounter>>
    let during: (work: () => Promise<unknown>) => Promise<string[]>

    beforeAll(async () => {
      server = await startRedisServer()
      client = await clients.single(kind, server.url)
      store = new RedisStore({ client, prefix })
      counter = await commandCounter(server.url, client)
      // The marks go through the client under test, so they are ordered with its commands.
      const mark = (text: string) => echo(client, text)
      during = (work) => counter.during(work, mark)
    })
    afterAll(async () => {
      counter.stop()
      await clients.closeAll()
      await server.stop()
    })

    it('a load with its touch is one command, a save is one, and neither adds more', async () => {
      const id = randomUUID()
      const now = Date.now()
      // A fresh server does not know the scripts: EVALSHA meets NOSCRIPT, then EVAL, once each.
      expect(
        await during(() =>
          store.save(id, newChange({ set: { a: '1' }, createdAt: now, expiresAt: now + HOUR })),
        ),
      ).toEqual(['evalsha', 'eval'])
      expect(
        await during(() => store.load(id, { touchAt: Date.now(), absoluteTimeout: 2 * HOUR })),
      ).toEqual(['evalsha', 'eval'])
      expect(await during(() => store.load(id, { touchAt: Date.now() }))).toEqual(['evalsha'])
      expect(
        await during(() => store.save(id, newChange({ set: { a: '2' }, expectedVersion: 1 }))),
      ).toEqual(['evalsha'])
      // A logged-in user's save keeps its owner: still one command.
      const owned = randomUUID()
      expect(await during(() => store.save(owned, newChange({ userId: 'u1' })))).toEqual([
        'sadd',
        'evalsha',
      ])
      expect(
        await during(() =>
          store.save(owned, newChange({ set: { b: '1' }, userId: 'u1', expectedVersion: 1 })),
        ),
      ).toEqual(['evalsha'])
      // A change of owner: the script asks for the index entry first, then writes.
      expect(
        await during(() => store.save(owned, newChange({ userId: 'u2', expectedVersion: 2 }))),
      ).toEqual(['evalsha', 'sadd', 'evalsha'])
      // Destroying an owned session unlinks it from its owner's index with a second command.
      expect(await during(() => store.destroy(owned))).toEqual(['evalsha', 'eval', 'srem'])
      expect(await during(() => store.destroy(id))).toEqual(['evalsha'])
    })

    it('a save runs no TYPE, one HSET, and rewrites only the metadata that changed', async () => {
      const id = randomUUID()
      const now = Date.now()
      const owned = {
        cookie: { originalMaxAge: HOUR },
        createdAt: now,
        expiresAt: now + HOUR,
        idleTimeout: HOUR,
        userId: 'u-rt',
      }
      await store.save(id, newChange({ ...owned, set: { a: '1' } }))
      await during(() => Promise.resolve()) // MONITOR has reported everything before this point
      counter.resetScripted()
      await during(() =>
        store.save(
          id,
          newChange({
            ...owned,
            set: { a: '2', b: '3' },
            unset: ['c'],
            expiresAt: now + HOUR + 5,
            expectedVersion: 1,
          }),
        ),
      )
      const key = `${prefix}${id}`
      expect(counter.scripted()).toEqual([
        ['time'],
        // @movingUntil: a renewal on a cluster may hold the session (see redis/renew.ts).
        [
          'hmget',
          key,
          '@version',
          '@expiresAt',
          '@userId',
          '@idleTimeout',
          '@cookie',
          '@movingUntil',
        ],
        ['hdel', key, 'c'],
        ['hset', key, '@version', '2', '@expiresAt', String(now + HOUR + 5), 'a', '2', 'b', '3'],
        ['pexpireat', key, String(now + HOUR + 5)],
      ])
      // A save that drops the owner deletes @userId; one without an owner to drop does not.
      counter.resetScripted()
      await during(() => store.save(id, newChange({ ...owned, userId: null, expectedVersion: 2 })))
      expect(counter.scripted().map((args) => args[0])).toEqual([
        'time',
        'hmget',
        'hset',
        'hdel',
        'pexpireat',
      ])
      counter.resetScripted()
      await during(() => store.save(id, newChange({ ...owned, userId: null, expectedVersion: 3 })))
      expect(counter.scripted().map((args) => args[0])).toEqual([
        'time',
        'hmget',
        'hset',
        'pexpireat',
      ])
    })

    it('a load drops a key past its own expiry from the hash in its one command', async () => {
      const id = randomUUID()
      const now = Date.now()
      // Expiries already past at save time: no clock has to move for the load to drop them.
      await store.save(
        id,
        newChange({
          set: { otp: '"1"', '@code': '"2"', flash: '"hi"', cart: '[]' },
          keyExpires: { otp: now - 1, '@code': now - 1, flash: now + HOUR },
        }),
      )
      const key = `${prefix}${id}`
      const inspect = new Redis(server.url)
      try {
        const stored = await inspect.hgetall(key)
        expect(Object.keys(stored).sort()).toEqual(
          ['@@code', '@cookie', '@createdAt', '@expiresAt', '@idleTimeout', '@keyExpires']
            .concat(['@version', 'cart', 'flash', 'otp'])
            .sort(),
        )
        await during(() => Promise.resolve())
        counter.resetScripted()
        let loaded: Awaited<ReturnType<typeof store.load>> = null
        expect(
          await during(async () => {
            loaded = await store.load(id, { touchAt: Date.now() })
          }),
        ).toEqual(['evalsha'])
        expect(loaded!.data).toEqual({ flash: '"hi"', cart: '[]' })
        expect(loaded!.keyExpires).toEqual({ flash: now + HOUR })
        // The script deleted the fields and rewrote the expiries, in the same call.
        expect(counter.scripted().filter((args) => args[0] === 'hdel')).toEqual([
          ['hdel', key, expect.stringMatching(/^(otp|@@code)$/), expect.any(String)],
        ])
        const after = await inspect.hgetall(key)
        expect(after.otp).toBeUndefined()
        expect(after['@@code']).toBeUndefined()
        expect(after.flash).toBe('"hi"')
        expect(JSON.parse(after['@keyExpires']!)).toEqual({ flash: now + HOUR })

        // Once the last expiry is gone, so is the metadata field.
        await store.save(
          id,
          newChange({ set: { flash: '"x"' }, expectedVersion: 1, keyExpires: { flash: now - 1 } }),
        )
        await store.load(id)
        const last = await inspect.hgetall(key)
        expect(last.flash).toBeUndefined()
        expect(last['@keyExpires']).toBeUndefined()
        expect(last.cart).toBe('[]')
      } finally {
        inspect.disconnect()
      }
    })

    it('after SCRIPT FLUSH (as after a restart) the script is sent again and the call still succeeds', async () => {
      const id = randomUUID()
      await store.save(id, newChange({ set: { a: '1' } }))
      const admin = new Redis(server.url)
      await admin.script('FLUSH')
      admin.disconnect()
      expect(await during(() => store.load(id))).toEqual(['evalsha', 'eval'])
      expect(await during(() => store.load(id))).toEqual(['evalsha'])
      expect((await store.load(id))?.data).toEqual({ a: '1' })
    })

    it('calls made together, with commands of the app between them, each get their own reply', async () => {
      const ids = Array.from({ length: 8 }, () => randomUUID())
      await Promise.all(ids.map((id, i) => store.save(id, newChange({ set: { n: String(i) } }))))
      const admin = new Redis(server.url)
      await admin.script('FLUSH')
      admin.disconnect()
      // Loads, saves and the app's own commands, all started in one turn: the store's calls
      // meet NOSCRIPT and fall back to EVAL, and every reply reaches the call it answers.
      const results = await Promise.all(
        ids.flatMap((id, i) => [
          store.load(id).then((record) => record?.data.n),
          echo(client, `app-${i}`),
          store
            .save(id, newChange({ expectedVersion: 1, set: { m: String(i) } }))
            .then((saved) => saved.ok),
        ]),
      )
      expect(results).toEqual(ids.flatMap((_, i) => [String(i), `app-${i}`, true]))
      for (const [i, id] of ids.entries())
        expect((await store.load(id))?.data).toEqual({ n: String(i), m: String(i) })
    })

    it('through the middleware: a reading request (rolling) costs one command, a writing request two', async () => {
      const app = express()
      app.use(
        session(store, { secret: 'round-trip-secret', rolling: true, cookie: { maxAge: HOUR } }),
      )
      app.get('/read', (req, res) => res.json({ n: req.session.n ?? 0 }))
      app.post('/write', (req, res) => {
        req.session.n = (req.session.n ?? 0) + 1
        res.json({ n: req.session.n })
      })
      const http = app.listen(0, '127.0.0.1')
      await new Promise((resolve) => http.once('listening', resolve))
      const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
      try {
        const first = await fetch(`${base}/write`, { method: 'POST' })
        const cookie = first.headers.get('set-cookie')!.split(';')[0]!

        let read: Response | undefined
        expect(
          await during(async () => (read = await fetch(`${base}/read`, { headers: { cookie } }))),
        ).toEqual(['evalsha'])
        expect(await read!.json()).toEqual({ n: 1 })
        expect(read!.headers.get('set-cookie')).toMatch(/^connect\.sid=s%3A/) // rolling: the cookie was renewed

        let write: Response | undefined
        expect(
          await during(
            async () =>
              (write = await fetch(`${base}/write`, { method: 'POST', headers: { cookie } })),
          ),
        ).toEqual(['evalsha', 'evalsha'])
        expect(await write!.json()).toEqual({ n: 2 })
      } finally {
        await new Promise((resolve) => http.close(resolve))
      }
    })
  })
}

declare module '../../lib/session.js' {
  interface SessionData {
    n: number
  }
}
