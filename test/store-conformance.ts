/**
 * The Store conformance suite. Every store runs it:
 *
 *   describeStore('MemoryStore', async () => new MemoryStore())
 *
 * `makeStore` must return an isolated, empty store on each call (a fresh key prefix or
 * directory), because `count` and `clear` see everything the store holds.
 */
import { randomUUID } from 'node:crypto'
import type {
  Clearable,
  Countable,
  SessionChange,
  SessionRecord,
  Store,
  UserIndex,
} from '../lib/store.js'
import { isClearable, isClosable, isCountable, isUserIndex } from '../lib/store.js'
import { describeTouchThrottle, describeUserLimit } from './store-conformance-users.js'
import { describeNoRenewal, describeRenewal } from './renew-conformance.js'
import { useFakeDate } from './support/clock.js'
import { reportsLifecycle, type StoreNotice } from '../lib/store-notices.js'

export interface ConformanceOptions {
  /** Called once after the suite with every store it made. */
  cleanup?: (stores: Store[]) => Promise<void>
  /** Whether the store renews ids (the Renewable capability). Default true. */
  renewable?: boolean
  /**
   * False for a store that keeps no per-key expiries (an adapted express-session store); the
   * per-key TTL cases are skipped then. Default true.
   */
  keyExpiry?: boolean
  /**
   * What the store reports to `onLifecycle` listeners. Absent: the store must not claim the
   * capability.
   */
  lifecycle?: {
    /**
     * The expiries a load can see: past the idle expiry and at the absolute timeout, or only the
     * absolute timeout (Redis removes an idle key by its TTL; PostgreSQL's load skips the row).
     */
    atLoad: 'idle and absolute' | 'absolute'
    /** Runs the store's sweep now, for a store that has one. */
    prune?: (store: Store) => Promise<unknown>
  }
}

const HOUR = 3_600_000

export function newChange(overrides: Partial<SessionChange> = {}): SessionChange {
  const now = Date.now()
  return {
    set: {},
    unset: [],
    cookie: {},
    createdAt: now,
    expiresAt: now + HOUR,
    idleTimeout: HOUR,
    userId: null,
    expectedVersion: null,
    ...overrides,
  }
}

/** Resolves once the wall clock reaches `at` (epoch ms): waiting for time itself, not for an event. */
async function waitUntil(at: number): Promise<void> {
  while (Date.now() < at)
    await new Promise((resolve) => setTimeout(resolve, Math.max(1, at - Date.now())))
}

export function describeStore(
  name: string,
  makeStore: () => Promise<Store>,
  options: ConformanceOptions = {},
): void {
  describe(`${name} conforms to the Store contract`, () => {
    const made: Store[] = []
    let store: Store

    async function fresh(): Promise<Store> {
      const s = await makeStore()
      made.push(s)
      return s
    }

    beforeAll(async () => {
      store = await fresh()
    })

    afterAll(async () => {
      await options.cleanup?.(made)
      for (const s of made) if (isClosable(s)) await s.close()
    })

    // Every store run here has the optional capabilities; the type guards must say so.
    function indexed(s: Store): Store & UserIndex {
      if (!isUserIndex(s)) throw new Error(`${name}: isUserIndex(store) is false`)
      return s
    }
    function countable(s: Store): Store & Countable {
      if (!isCountable(s)) throw new Error(`${name}: isCountable(store) is false`)
      return s
    }
    function clearable(s: Store): Store & Clearable {
      if (!isClearable(s)) throw new Error(`${name}: isClearable(store) is false`)
      return s
    }

    async function create(data: Record<string, unknown> = {}, extra: Partial<SessionChange> = {}) {
      const id = randomUUID()
      const set = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, JSON.stringify(v)]))
      const result = await store.save(id, newChange({ set, ...extra }))
      expect(result).toEqual({ ok: true, version: 1 })
      return id
    }

    describe('load', () => {
      it('returns null for an unknown id', async () => {
        expect(await store.load(randomUUID())).toBeNull()
      })

      it('returns what was created, with version 1', async () => {
        const createdAt = Date.now() - 1000
        const id = await create(
          { cart: { items: ['tea'] }, visits: 3, name: 'Zoë ✓' },
          {
            createdAt,
            expiresAt: createdAt + HOUR,
            cookie: { originalMaxAge: HOUR, sameSite: 'strict' },
            userId: 'u1',
          },
        )
        const record = await store.load(id)
        expect(record).toEqual<SessionRecord>({
          data: { cart: '{"items":["tea"]}', visits: '3', name: '"Zoë ✓"' },
          cookie: { originalMaxAge: HOUR, sameSite: 'strict' },
          createdAt,
          expiresAt: createdAt + HOUR,
          idleTimeout: HOUR,
          version: 1,
          userId: 'u1',
        })
      })

      it('has no userId when none was set', async () => {
        const id = await create({ a: 1 })
        const record = await store.load(id)
        expect(record?.userId).toBeUndefined()
      })

      it('keeps user keys that look like store metadata apart from the metadata', async () => {
        const id = await create({
          version: 'mine',
          expiresAt: 'mine too',
          cookie: { x: 1 },
          __proto__x: 1,
          '': 'empty',
        })
        const record = await store.load(id)
        expect(record?.version).toBe(1)
        expect(record?.data).toEqual({
          version: '"mine"',
          expiresAt: '"mine too"',
          cookie: '{"x":1}',
          __proto__x: '1',
          '': '"empty"',
        })
      })

      it('returns null once the session has expired', async () => {
        const id = await create({ a: 1 })
        expect(await store.load(id)).not.toBeNull()
        // Expiry is "expiresAt <= now": move expiresAt into the past instead of racing the clock,
        // so a loaded machine cannot turn this into a different test.
        await store.touch(id, Date.now() - 1)
        expect(await store.load(id)).toBeNull()
      })

      it('forgets a session when its expiry passes on its own', async () => {
        const id = randomUUID()
        const expiresAt = Date.now() + 200
        await store.save(
          id,
          newChange({ set: { a: '1' }, createdAt: expiresAt - 200, expiresAt, idleTimeout: 200 }),
        )
        // Present until its expiry: a null before then would be a store bug. (After it, absent.)
        const early = await store.load(id)
        expect(early !== null || Date.now() >= expiresAt).toBe(true)
        await waitUntil(expiresAt + 20)
        expect(await store.load(id)).toBeNull()
      })

      it('touches in the same call: expiresAt becomes touchAt + idleTimeout', async () => {
        const createdAt = Date.now()
        const id = await create(
          { a: 1 },
          { createdAt, expiresAt: createdAt + 1000, idleTimeout: HOUR },
        )
        const touchAt = createdAt + 500
        const touched = await store.load(id, { touchAt })
        expect(touched?.expiresAt).toBe(touchAt + HOUR)
        expect((await store.load(id))?.expiresAt).toBe(touchAt + HOUR)
        expect((await store.load(id))?.version).toBe(1)
      })

      it('caps a touch at createdAt + absoluteTimeout', async () => {
        const createdAt = Date.now()
        const id = await create(
          { a: 1 },
          { createdAt, expiresAt: createdAt + 1000, idleTimeout: HOUR },
        )
        const touched = await store.load(id, {
          touchAt: createdAt + 10,
          absoluteTimeout: 2 * HOUR - 1,
        })
        expect(touched?.expiresAt).toBe(createdAt + 10 + HOUR)
        const capped = await store.load(id, {
          touchAt: createdAt + HOUR + 10,
          absoluteTimeout: HOUR + 100,
        })
        expect(capped?.expiresAt).toBe(createdAt + HOUR + 100)
      })

      it('returns null and forgets a session whose absolute timeout has passed at touch time', async () => {
        const createdAt = Date.now() - 10_000
        const id = await create(
          { a: 1 },
          { createdAt, expiresAt: Date.now() + HOUR, idleTimeout: HOUR },
        )
        expect(await store.load(id, { touchAt: Date.now(), absoluteTimeout: 5_000 })).toBeNull()
        expect(await store.load(id)).toBeNull()
      })
    })

    describe('save', () => {
      it('creates only when the id is free: a second create is a conflict carrying the current record', async () => {
        const id = await create({ a: 1 })
        const result = await store.save(id, newChange({ set: { a: '2' } }))
        expect(result.ok).toBe(false)
        if (result.ok || result.reason !== 'conflict')
          throw new Error(`expected a conflict, got ${JSON.stringify(result)}`)
        expect(result.current.data).toEqual({ a: '1' })
        expect(result.current.version).toBe(1)
      })

      it('writes set keys, deletes unset keys and keeps the others, bumping the version', async () => {
        const id = await create({ keep: 'k', change: 1, drop: true })
        const result = await store.save(
          id,
          newChange({ set: { change: '2', added: '[1]' }, unset: ['drop'], expectedVersion: 1 }),
        )
        expect(result).toEqual({ ok: true, version: 2 })
        const record = await store.load(id)
        expect(record?.data).toEqual({ keep: '"k"', change: '2', added: '[1]' })
        expect(record?.version).toBe(2)
      })

      it('replaces the cookie overrides, expiry and owner on every save, and keeps createdAt', async () => {
        const createdAt = Date.now() - 5000
        const id = await create(
          { a: 1 },
          { createdAt, cookie: { originalMaxAge: HOUR }, userId: 'old-owner' },
        )
        const expiresAt = Date.now() + 2 * HOUR
        await store.save(
          id,
          newChange({
            cookie: { originalMaxAge: 2 * HOUR, secure: true },
            createdAt,
            expiresAt,
            idleTimeout: 2 * HOUR,
            userId: 'new-owner',
            expectedVersion: 1,
          }),
        )
        const record = await store.load(id)
        expect(record).toMatchObject({
          cookie: { originalMaxAge: 2 * HOUR, secure: true },
          createdAt,
          expiresAt,
          idleTimeout: 2 * HOUR,
          userId: 'new-owner',
        })
      })

      it('rejects a stale version with a conflict carrying the current record, and writes nothing', async () => {
        const id = await create({ n: 1 })
        await store.save(id, newChange({ set: { n: '2' }, expectedVersion: 1 }))
        const stale = await store.save(
          id,
          newChange({ set: { n: '99', other: '1' }, expectedVersion: 1 }),
        )
        if (stale.ok || stale.reason !== 'conflict')
          throw new Error(`expected a conflict, got ${JSON.stringify(stale)}`)
        expect(stale.current).toMatchObject({ data: { n: '2' }, version: 2 })
        expect((await store.load(id))?.data).toEqual({ n: '2' })
      })

      it("answers 'gone' for a destroyed session and does not bring it back", async () => {
        const id = await create({ n: 1 })
        await store.destroy(id)
        expect(await store.save(id, newChange({ set: { n: '2' }, expectedVersion: 1 }))).toEqual({
          ok: false,
          reason: 'gone',
        })
        expect(await store.load(id)).toBeNull()
      })

      it("answers 'gone' for an expired session", async () => {
        const id = await create({ a: 1 })
        await store.touch(id, Date.now() - 1)
        expect(await store.save(id, newChange({ set: { a: '2' }, expectedVersion: 1 }))).toEqual({
          ok: false,
          reason: 'gone',
        })
        expect(await store.load(id)).toBeNull()
      })

      it('lets exactly one of many concurrent saves at one version win', async () => {
        const id = await create({ n: 0 })
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.save(id, newChange({ set: { n: String(i + 1) }, expectedVersion: 1 })),
          ),
        )
        const wins = results.filter((r) => r.ok)
        expect(wins).toHaveLength(1)
        expect(results.filter((r) => !r.ok && r.reason === 'conflict')).toHaveLength(19)
        expect((await store.load(id))?.version).toBe(2)
      })

      it('round-trips large and unusual values as the exact JSON text', async () => {
        const big = JSON.stringify('x'.repeat(200_000))
        const odd = JSON.stringify({
          nul: '\u0000',
          emoji: '🛒',
          quote: '"',
          lines: 'a\nb',
          nested: [[{}]],
        })
        const id = randomUUID()
        await store.save(id, newChange({ set: { big, odd } }))
        expect((await store.load(id))?.data).toEqual({ big, odd })
      })

      it('stores a session with no keys at all', async () => {
        const id = randomUUID()
        expect(await store.save(id, newChange())).toEqual({ ok: true, version: 1 })
        expect((await store.load(id))?.data).toEqual({})
      })
    })

    ;(options.keyExpiry === false ? describe.skip : describe)('per-key expiry', () => {
      // The app's clock (which every store takes its "now" from) moves; nothing sleeps.
      const clock = useFakeDate()
      const MINUTE = 60_000

      async function createWithLifetimes(): Promise<string> {
        return create(
          { otp: '123456', '@code': 'x', cart: ['tea'] },
          { keyExpires: { otp: Date.now() + 5 * MINUTE, '@code': Date.now() + 10 * MINUTE } },
        )
      }

      it('keeps a key until its own expiry, then leaves it out of every load', async () => {
        const id = await createWithLifetimes()
        const before = await store.load(id)
        expect(before!.data).toEqual({ otp: '"123456"', '@code': '"x"', cart: '["tea"]' })
        expect(before!.keyExpires).toEqual({
          otp: clock.now() + 5 * MINUTE,
          '@code': clock.now() + 10 * MINUTE,
        })

        clock.advance(5 * MINUTE) // an expiry at now has passed ("<= now", as for sessions)
        const after = await store.load(id)
        expect(after!.data).toEqual({ '@code': '"x"', cart: '["tea"]' })
        expect(after!.keyExpires).toEqual({ '@code': clock.now() + 5 * MINUTE })
        expect(after!.version).toBe(1) // dropping an expired key is not a write of the app's

        clock.advance(5 * MINUTE)
        const last = await store.load(id)
        expect(last!.data).toEqual({ cart: '["tea"]' })
        expect(last!.keyExpires ?? {}).toEqual({})
      })

      it('keeps an expired key gone after a later save that does not mention it', async () => {
        const id = await createWithLifetimes()
        clock.advance(6 * MINUTE)
        const loaded = await store.load(id)
        expect(Object.keys(loaded!.data).sort()).toEqual(['@code', 'cart'])
        const saved = await store.save(
          id,
          newChange({
            set: { cart: '["tea","cake"]' },
            expectedVersion: loaded!.version,
            createdAt: loaded!.createdAt,
            keyExpires: loaded!.keyExpires!,
          }),
        )
        expect(saved).toEqual({ ok: true, version: 2 })
        const again = await store.load(id)
        expect(again!.data).toEqual({ '@code': '"x"', cart: '["tea","cake"]' })
        expect(again!.keyExpires).toEqual({ '@code': loaded!.keyExpires!['@code'] })
      })

      it('a save replaces the expiries: without them, the keys stay for good', async () => {
        const id = await createWithLifetimes()
        const saved = await store.save(
          id,
          newChange({ set: { otp: '"654321"' }, expectedVersion: 1, keyExpires: {} }),
        )
        expect(saved).toEqual({ ok: true, version: 2 })
        clock.advance(30 * MINUTE)
        const loaded = await store.load(id)
        expect(loaded!.data).toEqual({ otp: '"654321"', '@code': '"x"', cart: '["tea"]' })
        expect(loaded!.keyExpires ?? {}).toEqual({})
      })

      it('a key given a new expiry by a save lives until then', async () => {
        const id = await createWithLifetimes()
        clock.advance(4 * MINUTE)
        const later = clock.now() + 5 * MINUTE
        await store.save(
          id,
          newChange({ set: { otp: '"999"' }, expectedVersion: 1, keyExpires: { otp: later } }),
        )
        clock.advance(4 * MINUTE) // past the first expiry, before the new one
        expect((await store.load(id))!.data.otp).toBe('"999"')
        clock.advance(MINUTE)
        expect((await store.load(id))!.data.otp).toBeUndefined()
      })

      it('a conflict carries the stored expiries, so a replayed save keeps them', async () => {
        const id = await createWithLifetimes()
        const result = await store.save(id, newChange({ set: { a: '1' }, expectedVersion: 7 }))
        expect(result.ok).toBe(false)
        if (result.ok || result.reason !== 'conflict') throw new Error('expected a conflict')
        expect(result.current.keyExpires).toEqual({
          otp: clock.now() + 5 * MINUTE,
          '@code': clock.now() + 10 * MINUTE,
        })
      })
    })

    describe('touch and destroy', () => {
      it('touch sets the expiry of an existing session without bumping its version', async () => {
        const id = await create({ a: 1 })
        const expiresAt = Date.now() + 5 * HOUR
        await store.touch(id, expiresAt)
        const record = await store.load(id)
        expect(record?.expiresAt).toBe(expiresAt)
        expect(record?.version).toBe(1)
      })

      it('touch of an unknown id is a no-op and does not create it', async () => {
        const id = randomUUID()
        await store.touch(id, Date.now() + HOUR)
        expect(await store.load(id)).toBeNull()
      })

      it('destroy removes the session; destroying an unknown id is a no-op', async () => {
        const id = await create({ a: 1 })
        await store.destroy(id)
        expect(await store.load(id)).toBeNull()
        await expect(store.destroy(randomUUID())).resolves.toBeUndefined()
      })
    })

    describe('per-user index', () => {
      it('lists the live sessions of a user and no one else', async () => {
        const user = `user-${randomUUID()}`
        const a = await create({ a: 1 }, { userId: user })
        const b = await create({ b: 1 }, { userId: user })
        await create({ c: 1 }, { userId: `other-${randomUUID()}` })
        expect((await indexed(store).listByUser(user)).sort()).toEqual([a, b].sort())
      })

      it('follows a change of owner and an unlink', async () => {
        const first = `user-${randomUUID()}`
        const second = `user-${randomUUID()}`
        const id = await create({ a: 1 }, { userId: first })
        await store.save(id, newChange({ userId: second, expectedVersion: 1 }))
        expect(await indexed(store).listByUser(first)).toEqual([])
        expect(await indexed(store).listByUser(second)).toEqual([id])
        await store.save(id, newChange({ userId: null, expectedVersion: 2 }))
        expect(await indexed(store).listByUser(second)).toEqual([])
      })

      it('drops destroyed and expired sessions from the list', async () => {
        const user = `user-${randomUUID()}`
        const live = await create({ a: 1 }, { userId: user })
        const destroyed = await create({ a: 1 }, { userId: user })
        const expiring = await create({ a: 1 }, { userId: user })
        await store.destroy(destroyed)
        await store.touch(expiring, Date.now() - 1)
        expect(await indexed(store).listByUser(user)).toEqual([live])
      })

      it('destroyByUser signs the user out everywhere and leaves other users alone', async () => {
        const user = `user-${randomUUID()}`
        const other = await create({ o: 1 }, { userId: `other-${randomUUID()}` })
        const ids = [
          await create({ a: 1 }, { userId: user }),
          await create({ a: 2 }, { userId: user }),
          await create({ a: 3 }, { userId: user }),
        ]
        expect(await indexed(store).destroyByUser(user)).toBe(3)
        for (const id of ids) expect(await store.load(id)).toBeNull()
        expect(await indexed(store).listByUser(user)).toEqual([])
        expect(await store.load(other)).not.toBeNull()
        expect(await indexed(store).destroyByUser(user)).toBe(0)
      })

      it('a session saved after its user was signed out everywhere is gone, not revived', async () => {
        const user = `user-${randomUUID()}`
        const id = await create({ a: 1 }, { userId: user })
        await indexed(store).destroyByUser(user)
        expect(
          await store.save(id, newChange({ set: { a: '2' }, userId: user, expectedVersion: 1 })),
        ).toEqual({ ok: false, reason: 'gone' })
        expect(await indexed(store).listByUser(user)).toEqual([])
      })
    })

    describeUserLimit(() => store)
    describeTouchThrottle(() => store)
    if (options.renewable === false) describeNoRenewal(() => store)
    else describeRenewal(name, () => store, newChange)
    describe('lifecycle reports', () => {
      const lifecycle = options.lifecycle

      if (!lifecycle) {
        it('does not claim to report expiries and sign-outs', () => {
          expect(reportsLifecycle(store)).toBe(false)
        })
        return
      }

      async function listening(): Promise<{ own: Store; notices: StoreNotice[] }> {
        const own = await fresh()
        if (!reportsLifecycle(own)) throw new Error('the store has no onLifecycle')
        const notices: StoreNotice[] = []
        own.onLifecycle((notice) => notices.push(notice))
        return { own, notices }
      }

      it('reports destroyByUser with the number of live sessions it destroyed', async () => {
        const { own, notices } = await listening()
        const user = `user-${randomUUID()}`
        await own.save(randomUUID(), newChange({ userId: user }))
        await own.save(randomUUID(), newChange({ userId: user }))
        expect(await indexed(own).destroyByUser(user)).toBe(2)
        expect(notices).toEqual([{ type: 'signedOutEverywhere', userId: user, count: 2 }])
      })

      it('reports a session a load finds past its absolute timeout, once, with its owner', async () => {
        const { own, notices } = await listening()
        const user = `user-${randomUUID()}`
        const id = randomUUID()
        const createdAt = Date.now() - 10_000
        await own.save(id, newChange({ createdAt, userId: user }))
        const other = randomUUID()
        await own.save(other, newChange())
        expect(await own.load(id, { touchAt: Date.now(), absoluteTimeout: 5_000 })).toBeNull()
        expect(await own.load(id, { touchAt: Date.now(), absoluteTimeout: 5_000 })).toBeNull()
        expect(
          await own.load(other, { touchAt: Date.now(), absoluteTimeout: 5_000 }),
        ).not.toBeNull()
        expect(notices).toEqual([{ type: 'expired', id, seenAt: 'load', userId: user }])
      })

      if (lifecycle.atLoad === 'idle and absolute') {
        it('reports a session a load finds past its idle expiry, once', async () => {
          const { own, notices } = await listening()
          const id = randomUUID()
          await own.save(id, newChange())
          await own.touch(id, Date.now() - 1)
          expect(await own.load(id)).toBeNull()
          expect(await own.load(id)).toBeNull()
          expect(notices).toEqual([{ type: 'expired', id, seenAt: 'load' }])
        })
      }

      if (lifecycle.prune) {
        const prune = lifecycle.prune
        it('reports each session its sweep removes, and no live one', async () => {
          const { own, notices } = await listening()
          const user = `user-${randomUUID()}`
          const expired = [randomUUID(), randomUUID()]
          for (const id of expired) {
            await own.save(id, newChange({ userId: user }))
            await own.touch(id, Date.now() - 1)
          }
          const live = randomUUID()
          await own.save(live, newChange({ userId: user }))
          await prune(own)
          expect(notices.map((n) => n.type === 'expired' && n.id).sort()).toEqual(expired.sort())
          expect(notices).toContainEqual({
            type: 'expired',
            id: expired[0],
            seenAt: 'prune',
            userId: user,
          })
          expect(await own.load(live)).not.toBeNull()
        })
      }

      it('stops reporting to a listener that was removed', async () => {
        const own = await fresh()
        if (!reportsLifecycle(own)) throw new Error('the store has no onLifecycle')
        const notices: StoreNotice[] = []
        const stop = own.onLifecycle((notice) => notices.push(notice))
        const user = `user-${randomUUID()}`
        await own.save(randomUUID(), newChange({ userId: user }))
        stop()
        expect(await indexed(own).destroyByUser(user)).toBe(1)
        expect(notices).toEqual([])
      })

      it('a listener that throws fails neither the store call nor the other listeners', async () => {
        const { own, notices } = await listening()
        if (!reportsLifecycle(own)) throw new Error('the store has no onLifecycle')
        own.onLifecycle(() => {
          throw new Error('listener bug')
        })
        const later: StoreNotice[] = []
        own.onLifecycle((notice) => later.push(notice))
        const user = `user-${randomUUID()}`
        await own.save(randomUUID(), newChange({ userId: user }))
        expect(await indexed(own).destroyByUser(user)).toBe(1)
        const expected = [{ type: 'signedOutEverywhere', userId: user, count: 1 }]
        expect(notices).toEqual(expected)
        expect(later).toEqual(expected)
      })

      it('refuses a listener that is not a function', async () => {
        const own = await fresh()
        if (!reportsLifecycle(own)) throw new Error('the store has no onLifecycle')
        expect(() => own.onLifecycle('log' as never)).toThrow(/listener must be a function/)
      })
    })

    describe('count and clear', () => {
      it('reports the per-user index, count and clear through the type guards', () => {
        expect([isUserIndex(store), isCountable(store), isClearable(store)]).toEqual([
          true,
          true,
          true,
        ])
      })

      it('counts live sessions and clears them all', async () => {
        const own = await fresh()
        expect(await countable(own).count()).toBe(0)
        for (let i = 0; i < 5; i++)
          await own.save(randomUUID(), newChange({ set: { i: String(i) }, userId: 'u' }))
        expect(await countable(own).count()).toBe(5)
        await clearable(own).clear()
        expect(await countable(own).count()).toBe(0)
        expect(await indexed(own).listByUser('u')).toEqual([])
      })

      it('does not count expired sessions', async () => {
        const own = await fresh()
        const expiring = randomUUID()
        await own.save(expiring, newChange())
        await own.save(randomUUID(), newChange())
        expect(await countable(own).count()).toBe(2)
        await own.touch(expiring, Date.now() - 1)
        expect(await countable(own).count()).toBe(1)
      })
    })
  })
}
