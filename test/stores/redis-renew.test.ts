/**
 * RedisStore's id renewal on a 3-master Redis Cluster, where the old and new keys live in
 * different slots and the move takes three steps (mark, copy, commit; see stores/redis/renew.ts).
 * Each case runs something else on the real cluster at a chosen point between two steps, through
 * a client whose script calls first run that action, and checks that nothing is lost, nothing
 * is doubled, and the old id ends as a forward to the one renewed session. The conformance suite
 * (redis.test.ts) covers the contract itself on both a single server and the cluster.
 */
import { randomUUID } from 'node:crypto'
import { RedisStore, type RedisClient } from '../../entries/redis'
import { COMMIT_SCRIPT, PLACE_SCRIPT } from '../../stores/redis/renew-scripts'
import type { SessionRecord } from '../../lib/store'
import { newChange } from '../store-conformance'
import { CLIENT_KINDS, TestClients } from '../support/redis-clients'
import { commandOn, hooked } from '../support/hooked-client'
import { testPrefix } from '../support/redis-server'

jest.setTimeout(90_000)

const clients = new TestClients()
afterAll(() => clients.closeAll())

const HOUR = 3_600_000
const GRACE = 10 * 60_000

for (const kind of CLIENT_KINDS) {
  describe(`RedisStore renewal on a ${kind} cluster, between its steps`, () => {
    let client: RedisClient
    let prefix: string
    let plain: RedisStore

    beforeAll(async () => {
      client = await clients.cluster(kind)
      prefix = testPrefix('renew-steps')
      plain = new RedisStore({ client, prefix, timeout: 60_000 })
    })
    afterAll(() => plain.clear())

    /** A store whose script `sha` first runs `before`. */
    function storeHooking(sha: string, before: () => Promise<void>): RedisStore {
      return new RedisStore({ client: hooked(client, sha, before), prefix, timeout: 60_000 })
    }

    async function create(userId: string | null = null): Promise<string> {
      const id = randomUUID()
      const now = Date.now()
      const result = await plain.save(
        id,
        newChange({ set: { cart: '["tea"]' }, createdAt: now, expiresAt: now + HOUR, userId }),
      )
      expect(result).toEqual({ ok: true, version: 1 })
      return id
    }

    it('a save through the old id while the session is marked waits, then lands in the renewed session', async () => {
      const oldId = await create()
      const newId = randomUUID()
      let save: Promise<unknown> | undefined
      const store = storeHooking(PLACE_SCRIPT.sha, async () => {
        // Marked now: the session names the renewal that holds it.
        const key = prefix + oldId
        expect(await commandOn(client, key, ['HGET', key, '@movingTo'])).toBe(newId)
        save = plain.save(oldId, newChange({ set: { paid: 'true' }, expectedVersion: 1 }))
      })
      expect(await store.renew(oldId, newId, { now: Date.now(), graceMs: GRACE })).toEqual({
        ok: true,
      })
      expect(await save).toEqual({ ok: true, version: 2, renewedTo: newId })
      const record = await plain.load(newId)
      expect(record).toMatchObject({ version: 2, data: { cart: '["tea"]', paid: 'true' } })
      expect((await plain.load(oldId))?.renewedTo).toBe(newId)
    })

    it('a save that lands between the copy and the commit (the mark ran out) makes the renewal start again on the new state', async () => {
      const oldId = await create()
      const newId = randomUUID()
      const key = prefix + oldId
      const store = storeHooking(COMMIT_SCRIPT.sha, async () => {
        // As if the renewal had stalled past its mark: the mark is gone and a save lands.
        await commandOn(client, key, ['HDEL', key, '@movingTo', '@movingUntil'])
        expect(
          await plain.save(oldId, newChange({ set: { paid: 'true' }, expectedVersion: 1 })),
        ).toEqual({ ok: true, version: 2 })
      })
      expect(await store.renew(oldId, newId, { now: Date.now(), graceMs: GRACE })).toEqual({
        ok: true,
      })
      expect(await plain.load(newId)).toMatchObject({
        version: 2,
        data: { cart: '["tea"]', paid: 'true' },
      })
      const viaOld = await plain.load(oldId)
      expect(viaOld).toMatchObject({ renewedTo: newId, version: 2 })
    })

    it('a touch of the old id between the copy and the commit is kept by the renewed session', async () => {
      const oldId = await create()
      const newId = randomUUID()
      const later = Date.now() + 5 * HOUR
      const store = storeHooking(COMMIT_SCRIPT.sha, () => plain.touch(oldId, later))
      expect(await store.renew(oldId, newId, { now: Date.now(), graceMs: GRACE })).toEqual({
        ok: true,
      })
      const record = (await plain.load(newId)) as SessionRecord
      expect(record.expiresAt).toBe(later)
      expect(record.version).toBe(1)
    })

    it('a renewal that fails after its copy leaves the session where it was, unmarked and writable', async () => {
      const user = `user-${randomUUID()}`
      const oldId = await create(user)
      const newId = randomUUID()
      const store = storeHooking(COMMIT_SCRIPT.sha, async () => {
        throw new Error('the connection broke before the commit')
      })
      await expect(store.renew(oldId, newId, { now: Date.now(), graceMs: GRACE })).rejects.toThrow(
        /the connection broke before the commit/,
      )
      const key = prefix + oldId
      expect(await commandOn(client, key, ['HGET', key, '@movingTo'])).toBeNull()
      const record = await plain.load(oldId)
      expect(record).toMatchObject({ version: 1, data: { cart: '["tea"]' } })
      expect(record?.renewedTo).toBeUndefined()
      // Writable at once, not after the mark would have run out (the timeout is 60 s).
      expect(
        await plain.save(
          oldId,
          newChange({ set: { paid: 'true' }, userId: user, expectedVersion: 1 }),
        ),
      ).toEqual({ ok: true, version: 2 })
      // Its copy and the copy's index entry are gone.
      expect(await plain.load(newId)).toBeNull()
      expect(await plain.listByUser(user)).toEqual([oldId])
      // A later renewal goes through.
      const again = randomUUID()
      expect(await plain.renew(oldId, again, { now: Date.now(), graceMs: GRACE })).toEqual({
        ok: true,
      })
      expect(await plain.listByUser(user)).toContain(again)
      expect(await plain.listByUser(user)).not.toContain(oldId)
    })

    it('a renewal that loses to another one between its mark and its commit answers where the session went', async () => {
      const oldId = await create()
      const newId = randomUUID()
      const winner = randomUUID()
      const key = prefix + oldId
      const store = storeHooking(COMMIT_SCRIPT.sha, async () => {
        // The other renewal takes over once this one's mark is gone (as if it had run out).
        await commandOn(client, key, ['HDEL', key, '@movingTo', '@movingUntil'])
        expect(await plain.renew(oldId, winner, { now: Date.now(), graceMs: GRACE })).toEqual({
          ok: true,
        })
      })
      expect(await store.renew(oldId, newId, { now: Date.now(), graceMs: GRACE })).toEqual({
        ok: false,
        reason: 'renewed',
        id: winner,
      })
      // Its copy is gone: one session, under the winner's id.
      expect(await plain.load(newId)).toBeNull()
      expect(await plain.load(winner)).toMatchObject({ version: 1, data: { cart: '["tea"]' } })
    })
  })
}

for (const kind of CLIENT_KINDS) {
  describe(`RedisStore renewal on ${kind} (single server): bad input`, () => {
    let store: RedisStore
    beforeAll(async () => {
      store = new RedisStore({
        client: await clients.single(kind),
        prefix: testPrefix('renew-input'),
        timeout: 60_000,
      })
    })
    afterAll(() => store.clear())

    it('refuses a new id that is not a session id, or is the old id, and changes nothing', async () => {
      const id = randomUUID()
      expect(await store.save(id, newChange({ set: { cart: '["tea"]' } }))).toEqual({
        ok: true,
        version: 1,
      })
      const options = { now: Date.now(), graceMs: GRACE }
      await expect(store.renew(id, '../etc/passwd', options)).rejects.toThrow(
        /renew needs a valid new session id, got "..\/etc\/passwd"/,
      )
      await expect(store.renew(id, id, options)).rejects.toThrow(TypeError)
      expect(await store.load(id)).toMatchObject({ version: 1, data: { cart: '["tea"]' } })
      expect((await store.load(id))?.renewedTo).toBeUndefined()
      // An old id that cannot name a session names none.
      expect(await store.renew('../etc/passwd', randomUUID(), options)).toEqual({
        ok: false,
        reason: 'gone',
      })
    })
  })
}
