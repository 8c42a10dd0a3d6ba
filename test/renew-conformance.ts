/**
 * Conformance cases for the Renewable capability, run by describeStore on every store that
 * has it: the move, the grace window, and the old id's death after it.
 */
import { randomUUID } from 'node:crypto'
import type { Renewable, SessionChange, Store, UserIndex } from '../lib/store.js'
import { isRenewable, isUserIndex } from '../lib/store.js'

const HOUR = 3_600_000
/** A grace no test outlasts, however loaded the machine: the in-grace cases never race it. */
const LONG_GRACE = 10 * 60_000

/** Resolves once the wall clock passes `at`: waiting for time itself, as expiry must. */
async function waitUntil(at: number): Promise<void> {
  while (Date.now() <= at)
    await new Promise((resolve) => setTimeout(resolve, Math.max(1, at - Date.now() + 1)))
}

export function describeRenewal(
  name: string,
  current: () => Store,
  change: (overrides?: Partial<SessionChange>) => SessionChange,
): void {
  describe('renew (id renewal with a grace window)', () => {
    function renewable(): Store & Renewable & UserIndex {
      const store = current()
      if (!isRenewable(store)) throw new Error(`${name}: isRenewable(store) is false`)
      if (!isUserIndex(store)) throw new Error(`${name}: isUserIndex(store) is false`)
      return store
    }

    async function create(userId: string | null = null): Promise<string> {
      const id = randomUUID()
      const createdAt = Date.now() - 1000
      const result = await renewable().save(
        id,
        change({ set: { cart: '["tea"]' }, createdAt, expiresAt: createdAt + HOUR, userId }),
      )
      expect(result).toEqual({ ok: true, version: 1 })
      return id
    }

    it('moves the session to the new id with its data, version, owner and times', async () => {
      const store = renewable()
      const user = `user-${randomUUID()}`
      const oldId = await create(user)
      const before = await store.load(oldId)
      const newId = randomUUID()
      const now = Date.now()
      expect(await store.renew(oldId, newId, { now, graceMs: LONG_GRACE })).toEqual({ ok: true })
      const after = await store.load(newId)
      expect(after).toEqual({ ...before, renewedAt: now })
      expect(after?.renewedTo).toBeUndefined()
      expect(await store.listByUser(user)).toEqual([newId])
    })

    it('within the grace, the old id loads, saves and touches the renewed session', async () => {
      const store = renewable()
      const oldId = await create()
      const newId = randomUUID()
      await store.renew(oldId, newId, { now: Date.now(), graceMs: LONG_GRACE })

      const viaOld = await store.load(oldId)
      expect(viaOld).toMatchObject({ renewedTo: newId, version: 1, data: { cart: '["tea"]' } })

      const saved = await store.save(
        oldId,
        change({ set: { paid: 'true' }, expectedVersion: 1, createdAt: viaOld!.createdAt }),
      )
      expect(saved).toEqual({ ok: true, version: 2, renewedTo: newId })
      expect((await store.load(newId))?.data).toEqual({ cart: '["tea"]', paid: 'true' })

      // A stale version through the old id is a conflict carrying the renewed session.
      const stale = await store.save(oldId, change({ set: { x: '1' }, expectedVersion: 1 }))
      expect(stale).toMatchObject({ ok: false, reason: 'conflict', current: { version: 2 } })

      const later = Date.now() + 2 * HOUR
      await store.touch(oldId, later)
      expect((await store.load(newId))?.expiresAt).toBe(later)
    })

    it('a second renewal of the old id says where the session went, and changes nothing', async () => {
      const store = renewable()
      const oldId = await create()
      const newId = randomUUID()
      await store.renew(oldId, newId, { now: Date.now(), graceMs: LONG_GRACE })
      expect(
        await store.renew(oldId, randomUUID(), { now: Date.now(), graceMs: LONG_GRACE }),
      ).toEqual({ ok: false, reason: 'renewed', id: newId })
      expect((await store.load(newId))?.version).toBe(1)
    })

    it('of many concurrent renewals of one id, exactly one wins and the rest follow it', async () => {
      const store = renewable()
      const oldId = await create()
      const candidates = Array.from({ length: 8 }, () => randomUUID())
      const results = await Promise.all(
        candidates.map((id) => store.renew(oldId, id, { now: Date.now(), graceMs: LONG_GRACE })),
      )
      const winners = candidates.filter((_, i) => results[i]!.ok)
      expect(winners).toHaveLength(1)
      for (const result of results)
        if (!result.ok) expect(result).toEqual({ ok: false, reason: 'renewed', id: winners[0] })
      const live = await Promise.all(candidates.map((id) => store.load(id)))
      expect(live.filter((record) => record !== null && !record.renewedTo)).toHaveLength(1)
    })

    it("answers 'taken' when the new id is in use, and 'gone' for an unknown old id", async () => {
      const store = renewable()
      const oldId = await create()
      const other = await create()
      const now = Date.now()
      expect(await store.renew(oldId, other, { now, graceMs: LONG_GRACE })).toEqual({
        ok: false,
        reason: 'taken',
      })
      expect((await store.load(oldId))?.renewedTo).toBeUndefined()
      expect((await store.load(other))?.data).toEqual({ cart: '["tea"]' })
      expect(await store.renew(randomUUID(), randomUUID(), { now, graceMs: LONG_GRACE })).toEqual({
        ok: false,
        reason: 'gone',
      })
    })

    it('an id renewed twice within the grace reaches the session through both forwards', async () => {
      const store = renewable()
      const first = await create()
      const second = randomUUID()
      const third = randomUUID()
      await store.renew(first, second, { now: Date.now(), graceMs: LONG_GRACE })
      expect(await store.renew(second, third, { now: Date.now(), graceMs: LONG_GRACE })).toEqual({
        ok: true,
      })
      expect(await store.load(first)).toMatchObject({ renewedTo: third, version: 1 })
      expect(await store.load(second)).toMatchObject({ renewedTo: third, version: 1 })
      expect(await store.save(first, change({ set: { n: '1' }, expectedVersion: 1 }))).toEqual({
        ok: true,
        version: 2,
        renewedTo: third,
      })
      const later = Date.now() + 2 * HOUR
      await store.touch(first, later)
      expect(await store.load(third)).toMatchObject({ expiresAt: later, data: { n: '1' } })
      await store.destroy(first)
      expect(await store.load(third)).toBeNull()
      expect(await store.load(second)).toBeNull()
    })

    it('destroying the old id within the grace destroys the renewed session', async () => {
      const store = renewable()
      const oldId = await create()
      const newId = randomUUID()
      await store.renew(oldId, newId, { now: Date.now(), graceMs: LONG_GRACE })
      await store.destroy(oldId)
      expect(await store.load(newId)).toBeNull()
      expect(await store.load(oldId)).toBeNull()
    })

    it('after the grace the old id is dead: no load, no save, no renewal, no resurrection', async () => {
      const store = renewable()
      const oldId = await create()
      const newId = randomUUID()
      const now = Date.now()
      await store.renew(oldId, newId, { now, graceMs: 50 })
      await waitUntil(now + 50 + 20)
      expect(await store.load(oldId, { touchAt: Date.now() })).toBeNull()
      expect(await store.save(oldId, change({ set: { x: '1' }, expectedVersion: 1 }))).toEqual({
        ok: false,
        reason: 'gone',
      })
      expect(await store.renew(oldId, randomUUID(), { now: Date.now(), graceMs: 50 })).toEqual({
        ok: false,
        reason: 'gone',
      })
      await store.touch(oldId, Date.now() + HOUR)
      expect(await store.load(oldId)).toBeNull()
      expect((await store.load(newId))?.data).toEqual({ cart: '["tea"]' })
    })
  })
}

/**
 * For a store without the capability: the type guard says so, and `session({ renew })` refuses
 * it at setup (tested with the middleware).
 */
export function describeNoRenewal(current: () => Store): void {
  it('has no renew capability (isRenewable is false)', () => {
    expect(isRenewable(current())).toBe(false)
  })
}
