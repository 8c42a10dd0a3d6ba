/**
 * `maxSessionsPerUser` on RedisStore when a step after the decision fails, on a single server
 * and on a 3-master cluster, through both clients. The decision and the mark of the evicted are
 * one script on the user's index; the evicted sessions are destroyed next (other keys, other
 * slots). Here that destroy fails as a broken connection would, and the evicted session must
 * still never be listed, counted or saved again, and be destroyed by the user's next operation.
 * The concurrent cases (20 sign-ins, exactly N left) are in the conformance and middleware
 * suites (redis.test.ts).
 */
import { randomUUID } from 'node:crypto'
import { RedisStore, type RedisClient } from '../../entries/redis'
import { DESTROY_SCRIPT } from '../../stores/redis/scripts'
import type { UserLimit } from '../../lib/store'
import { newChange } from '../store-conformance'
import { CLIENT_KINDS, TestClients } from '../support/redis-clients'
import { commandOn, hooked } from '../support/hooked-client'
import { testPrefix } from '../support/redis-server'

jest.setTimeout(90_000)

const clients = new TestClients()
afterAll(() => clients.closeAll())

const EVICT: UserLimit = { max: 3, onLimit: 'evictOldest' }
const GRACE = 10 * 60_000

for (const kind of CLIENT_KINDS) {
  for (const topology of ['single server', '3-master cluster'] as const) {
    describe(`maxSessionsPerUser on RedisStore, ${kind} (${topology}), when a step fails`, () => {
      let client: RedisClient
      let prefix: string
      let plain: RedisStore

      beforeAll(async () => {
        client =
          topology === 'single server' ? await clients.single(kind) : await clients.cluster(kind)
        prefix = testPrefix('limit-steps')
        plain = new RedisStore({ client, prefix, timeout: 60_000 })
      })
      afterAll(() => plain.clear())

      /** Three sessions of a new user, oldest first. */
      async function threeSessions(): Promise<{ user: string; ids: string[] }> {
        const user = `user-${randomUUID()}`
        const ids: string[] = []
        const now = Date.now()
        for (let i = 0; i < 3; i++) {
          const id = randomUUID()
          const result = await plain.save(
            id,
            newChange({ userId: user, userLimit: EVICT, createdAt: now - 3000 + i }),
          )
          expect(result).toEqual({ ok: true, version: 1 })
          ids.push(id)
        }
        return { user, ids }
      }

      /** A store whose first destroy (of an evicted session) fails before reaching Redis. */
      function destroyFails(): RedisStore {
        const broken = hooked(client, DESTROY_SCRIPT.sha, async () => {
          throw new Error('connection lost before the destroy')
        })
        return new RedisStore({ client: broken, prefix, timeout: 60_000 })
      }

      it('the sign-in fails unsaved; the evicted is marked, never listed, and the next listByUser destroys it', async () => {
        const { user, ids } = await threeSessions()
        const [oldest, ...rest] = ids
        const signIn = randomUUID()
        await expect(
          destroyFails().save(signIn, newChange({ userId: user, userLimit: EVICT })),
        ).rejects.toThrow(/connection lost before the destroy/)
        expect(await plain.load(signIn)).toBeNull()
        // The decision stands in the index: the oldest is marked evicted (score -1).
        const index = `${prefix}user:${user}`
        expect(Number(await commandOn(client, index, ['ZSCORE', index, oldest!]))).toBe(-1)

        expect((await plain.listByUser(user)).sort()).toEqual([...rest].sort())
        expect(await plain.load(oldest!)).toBeNull()
        // A request that loaded it before cannot bring it back.
        expect(
          await plain.save(
            oldest!,
            newChange({ set: { a: '1' }, userId: user, expectedVersion: 1 }),
          ),
        ).toEqual({ ok: false, reason: 'gone' })
        expect(await commandOn(client, index, ['ZSCORE', index, oldest!])).toBeNull()
      })

      it('the next sign-in of the user destroys the evicted first, and evicts no one else', async () => {
        const { user, ids } = await threeSessions()
        const [oldest, ...rest] = ids
        await expect(
          destroyFails().save(randomUUID(), newChange({ userId: user, userLimit: EVICT })),
        ).rejects.toThrow(/connection lost/)
        const next = randomUUID()
        // Two live sessions remain counted, so this one fits without an eviction.
        expect(await plain.save(next, newChange({ userId: user, userLimit: EVICT }))).toEqual({
          ok: true,
          version: 1,
        })
        expect(await plain.load(oldest!)).toBeNull()
        expect((await plain.listByUser(user)).sort()).toEqual([...rest, next].sort())
      })

      it('destroyByUser destroys an evicted session left behind, without counting it', async () => {
        const { user, ids } = await threeSessions()
        await expect(
          destroyFails().save(randomUUID(), newChange({ userId: user, userLimit: EVICT })),
        ).rejects.toThrow(/connection lost/)
        expect(await plain.destroyByUser(user)).toBe(2)
        for (const id of ids) expect(await plain.load(id)).toBeNull()
      })

      it('a session renewed between the decision and its destroy dies under its new id too', async () => {
        const { user, ids } = await threeSessions()
        const [oldest, ...rest] = ids
        const renewed = randomUUID()
        const evicting = new RedisStore({
          client: hooked(client, DESTROY_SCRIPT.sha, async () => {
            expect(
              await plain.renew(oldest!, renewed, { now: Date.now(), graceMs: GRACE }),
            ).toEqual({ ok: true })
          }),
          prefix,
          timeout: 60_000,
        })
        const next = randomUUID()
        expect(await evicting.save(next, newChange({ userId: user, userLimit: EVICT }))).toEqual({
          ok: true,
          version: 1,
          evicted: [oldest],
        })
        expect(await plain.load(renewed)).toBeNull()
        expect(await plain.load(oldest!)).toBeNull()
        expect((await plain.listByUser(user)).sort()).toEqual([...rest, next].sort())
      })

      it('a renewed session keeps its place under the limit, and its old id dies with it when evicted', async () => {
        const { user, ids } = await threeSessions()
        const [oldest, ...rest] = ids
        const renewed = randomUUID()
        expect(await plain.renew(oldest!, renewed, { now: Date.now(), graceMs: GRACE })).toEqual({
          ok: true,
        })
        expect((await plain.listByUser(user)).sort()).toEqual([...rest, renewed].sort())
        const next = randomUUID()
        // Still the oldest by createdAt: renewal kept it.
        expect(await plain.save(next, newChange({ userId: user, userLimit: EVICT }))).toEqual({
          ok: true,
          version: 1,
          evicted: [renewed],
        })
        expect(await plain.load(renewed)).toBeNull()
        expect(await plain.load(oldest!)).toBeNull()
        expect((await plain.listByUser(user)).sort()).toEqual([...rest, next].sort())
      })
    })
  }
}
