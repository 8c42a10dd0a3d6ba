/**
 * Conformance for `maxSessionsPerUser` (SessionChange.userLimit) and touch throttling
 * (LoadOptions.touchAfter), run inside describeStore against every store. A store that does not
 * declare `enforcesUserLimit` (an adapted express-session store) must not claim it, and the
 * middleware refuses the option with it.
 */
import { randomUUID } from 'node:crypto'
import type { SaveResult, SessionChange, Store, UserLimit, UserLimitStore } from '../lib/store.js'
import { enforcesUserLimit } from '../lib/store.js'
import session from '../entries/index.js'
import { newChange } from './store-conformance.js'

const HOUR = 3_600_000
const EVICT: UserLimit = { max: 3, onLimit: 'evictOldest' }
const REFUSE: UserLimit = { max: 3, onLimit: 'refuse' }

export function describeUserLimit(getStore: () => Store): void {
  describe('at most N sessions per user (userLimit)', () => {
    /** Runs `body` on a store that enforces the limit; for one that does not, checks it does not claim to. */
    function limited(body: (store: UserLimitStore) => Promise<void>): () => Promise<void> {
      return async () => {
        const store = getStore()
        if (!enforcesUserLimit(store)) {
          // The middleware refuses the option up front rather than not enforcing it.
          expect(() => session(store, { secret: 'conformance', maxSessionsPerUser: 3 })).toThrow(
            /maxSessionsPerUser needs a store that enforces it/,
          )
          return
        }
        await body(store)
      }
    }

    async function signIn(
      store: Store,
      userId: string,
      extra: Partial<SessionChange> = {},
    ): Promise<{ id: string; result: SaveResult }> {
      const id = randomUUID()
      const result = await store.save(id, newChange({ userId, userLimit: EVICT, ...extra }))
      return { id, result }
    }

    it(
      '20 concurrent sign-ins of one user with a limit of 3 leave exactly 3, and the evicted never come back',
      limited(async (store) => {
        const user = `user-${randomUUID()}`
        const signIns = await Promise.all(Array.from({ length: 20 }, () => signIn(store, user)))
        for (const { result } of signIns) expect(result.ok).toBe(true)
        const live: string[] = []
        for (const { id } of signIns) if (await store.load(id)) live.push(id)
        expect(live).toHaveLength(3)
        expect((await store.listByUser(user)).sort()).toEqual([...live].sort())
        const evicted = signIns.flatMap(({ result }) => (result.ok ? (result.evicted ?? []) : []))
        expect(new Set(evicted).size).toBe(17)
        for (const id of evicted) {
          expect(live).not.toContain(id)
          // A request that loaded an evicted session before the eviction cannot bring it back.
          expect(
            await store.save(id, newChange({ set: { a: '1' }, userId: user, expectedVersion: 1 })),
          ).toEqual({ ok: false, reason: 'gone' })
          expect(await store.load(id)).toBeNull()
        }
        expect((await store.listByUser(user)).sort()).toEqual([...live].sort())
      }),
    )

    it(
      'evicts the oldest sessions by createdAt when an existing session is linked',
      limited(async (store) => {
        const user = `user-${randomUUID()}`
        const now = Date.now()
        const oldest = await signIn(store, user, { createdAt: now - 3000 })
        const middle = await signIn(store, user, { createdAt: now - 2000 })
        const newest = await signIn(store, user, { createdAt: now - 1000 })
        const other = await signIn(store, `other-${randomUUID()}`, { createdAt: now - 9000 })
        const anonymous = randomUUID()
        await store.save(anonymous, newChange({ set: { cart: '[1]' } }))
        const result = await store.save(
          anonymous,
          newChange({ userId: user, userLimit: EVICT, expectedVersion: 1 }),
        )
        expect(result).toEqual({ ok: true, version: 2, evicted: [oldest.id] })
        expect(await store.load(oldest.id)).toBeNull()
        expect((await store.listByUser(user)).sort()).toEqual(
          [middle.id, newest.id, anonymous].sort(),
        )
        expect((await store.load(anonymous))?.data).toEqual({ cart: '[1]' })
        expect(await store.load(other.id)).not.toBeNull()
      }),
    )

    it(
      'counts only live sessions of that user: expired, destroyed and unlinked ones make room',
      limited(async (store) => {
        const user = `user-${randomUUID()}`
        const limit: UserLimit = { max: 2, onLimit: 'refuse' }
        const expired = await signIn(store, user, { userLimit: limit })
        const destroyed = await signIn(store, user, { userLimit: limit })
        await store.touch(expired.id, Date.now() - 1)
        await store.destroy(destroyed.id)
        const unlinked = await signIn(store, user, { userLimit: limit })
        const kept = await signIn(store, user, { userLimit: limit })
        expect([unlinked.result.ok, kept.result.ok]).toEqual([true, true])
        expect(
          await store.save(unlinked.id, newChange({ userId: null, expectedVersion: 1 })),
        ).toEqual({ ok: true, version: 2 })
        const last = await signIn(store, user, { userLimit: limit })
        expect(last.result).toEqual({ ok: true, version: 1 })
        expect((await store.listByUser(user)).sort()).toEqual([kept.id, last.id].sort())
      }),
    )

    it(
      'refuse: 20 concurrent sign-ins with a limit of 3 let exactly 3 in, and the others write nothing',
      limited(async (store) => {
        const user = `user-${randomUUID()}`
        const signIns = await Promise.all(
          Array.from({ length: 20 }, () => signIn(store, user, { userLimit: REFUSE })),
        )
        const accepted = signIns.filter(({ result }) => result.ok).map(({ id }) => id)
        const refused = signIns.filter(({ result }) => !result.ok)
        expect(accepted).toHaveLength(3)
        expect(refused).toHaveLength(17)
        for (const { id, result } of refused) {
          expect(result).toEqual({ ok: false, reason: 'userLimit' })
          expect(await store.load(id)).toBeNull()
        }
        expect((await store.listByUser(user)).sort()).toEqual([...accepted].sort())
      }),
    )

    it(
      'refuse: an existing session is not linked and keeps its data and version',
      limited(async (store) => {
        const user = `user-${randomUUID()}`
        for (let i = 0; i < 3; i++) await signIn(store, user, { userLimit: REFUSE })
        const id = randomUUID()
        await store.save(id, newChange({ set: { cart: '[1]' } }))
        expect(
          await store.save(
            id,
            newChange({
              set: { who: '"ann"' },
              userId: user,
              userLimit: REFUSE,
              expectedVersion: 1,
            }),
          ),
        ).toEqual({ ok: false, reason: 'userLimit' })
        const record = await store.load(id)
        expect(record).toMatchObject({ version: 1, data: { cart: '[1]' } })
        expect(record?.userId).toBeUndefined()
        expect(await store.listByUser(user)).toHaveLength(3)
      }),
    )

    it(
      'a save of a session already linked to the user is not limited',
      limited(async (store) => {
        const user = `user-${randomUUID()}`
        const first = await signIn(store, user, { userLimit: REFUSE })
        for (let i = 0; i < 2; i++) await signIn(store, user, { userLimit: REFUSE })
        expect(
          await store.save(
            first.id,
            newChange({ set: { a: '1' }, userId: user, userLimit: REFUSE, expectedVersion: 1 }),
          ),
        ).toEqual({ ok: true, version: 2 })
        expect(await store.listByUser(user)).toHaveLength(3)
      }),
    )

    it(
      'a conflicting save evicts nothing',
      limited(async (store) => {
        const user = `user-${randomUUID()}`
        const ids: string[] = []
        for (let i = 0; i < 3; i++) ids.push((await signIn(store, user)).id)
        const id = randomUUID()
        await store.save(id, newChange())
        await store.save(id, newChange({ expectedVersion: 1 }))
        const result = await store.save(
          id,
          newChange({ userId: user, userLimit: EVICT, expectedVersion: 1 }),
        )
        expect(result).toMatchObject({ ok: false, reason: 'conflict' })
        expect((await store.listByUser(user)).sort()).toEqual([...ids].sort())
      }),
    )
  })
}

export function describeTouchThrottle(getStore: () => Store): void {
  describe('touch throttling (touchAfter)', () => {
    it('keeps the stored expiry within touchAfter of the exact one, and reports what it stored', async () => {
      const store = getStore()
      const now = Date.now()
      const id = randomUUID()
      await store.save(id, newChange({ createdAt: now, expiresAt: now + HOUR, idleTimeout: HOUR }))
      const touchAfter = 60_000

      const soon = await store.load(id, { touchAt: now + 1000, touchAfter })
      const exactSoon = now + 1000 + HOUR
      expect(soon!.expiresAt).toBeGreaterThanOrEqual(exactSoon - touchAfter)
      expect(soon!.expiresAt).toBeLessThanOrEqual(exactSoon)
      expect((await store.load(id))!.expiresAt).toBe(soon!.expiresAt)

      // A touch that moves the expiry by touchAfter or more is written exactly.
      const later = await store.load(id, { touchAt: now + 2 * touchAfter, touchAfter })
      expect(later!.expiresAt).toBe(now + 2 * touchAfter + HOUR)
      expect((await store.load(id))!.expiresAt).toBe(now + 2 * touchAfter + HOUR)
      expect(later!.version).toBe(1)
    })

    it('still ends a session whose absolute timeout has passed at touch time', async () => {
      const store = getStore()
      const now = Date.now()
      const id = randomUUID()
      await store.save(
        id,
        newChange({ createdAt: now - 2 * HOUR, expiresAt: now + HOUR, idleTimeout: HOUR }),
      )
      expect(
        await store.load(id, { touchAt: now, absoluteTimeout: HOUR, touchAfter: 10 * HOUR }),
      ).toBeNull()
      expect(await store.load(id)).toBeNull()
    })
  })
}
