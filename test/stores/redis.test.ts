/**
 * RedisStore through both clients it accepts (ioredis and node-redis v5), against real servers:
 * the suite's redis-server and a 3-master Redis Cluster this file starts. Each runs the Store
 * conformance suite (id renewal and maxSessionsPerUser included) and the middleware suite (200
 * concurrent adds to one cart, a logout racing a slow write; with maxSessionsPerUser, and with
 * renew). No mocks.
 */
import { randomUUID } from 'node:crypto'
import Redis from 'ioredis'
import { isClearable, type Store } from '../../lib/store'
import { RedisStore } from '../../entries/redis'
import { describeMiddlewareOverStore } from '../middleware-store-suite'
import { describeStore, newChange } from '../store-conformance'
import { CLIENT_KINDS, TestClients } from '../support/redis-clients'
import { testPrefix } from '../support/redis-server'

const clients = new TestClients()
afterAll(() => clients.closeAll())

const clearAll = async (stores: Store[]) => {
  for (const store of stores) if (isClearable(store)) await store.clear()
}

for (const kind of CLIENT_KINDS) {
  describeStore(
    `RedisStore on ${kind} (single server)`,
    async () => new RedisStore({ client: await clients.single(kind), prefix: testPrefix('redis') }),
    { cleanup: clearAll, lifecycle: { atLoad: 'absolute' } },
  )
  describeStore(
    `RedisStore on ${kind} (3-master cluster)`,
    async () =>
      new RedisStore({ client: await clients.cluster(kind), prefix: testPrefix('cluster') }),
    { lifecycle: { atLoad: 'absolute' } },
  )

  describeMiddlewareOverStore(
    `RedisStore on ${kind} (single server)`,
    async () => new RedisStore({ client: await clients.single(kind), prefix: testPrefix('mw') }),
  )
  describeMiddlewareOverStore(
    `RedisStore on ${kind} (single server)`,
    async () => new RedisStore({ client: await clients.single(kind), prefix: testPrefix('mw') }),
    { observed: true },
  )
  describeMiddlewareOverStore(
    `RedisStore on ${kind} (3-master cluster)`,
    async () =>
      new RedisStore({ client: await clients.cluster(kind), prefix: testPrefix('mw-cluster') }),
  )
  describeMiddlewareOverStore(
    `RedisStore on ${kind} (single server)`,
    async () =>
      new RedisStore({ client: await clients.single(kind), prefix: testPrefix('mw-limit') }),
    { maxSessionsPerUser: 3, touchAfter: 60_000 },
  )

  describeMiddlewareOverStore(
    `RedisStore on ${kind} (3-master cluster)`,
    async () =>
      new RedisStore({ client: await clients.cluster(kind), prefix: testPrefix('mw-limit') }),
    { maxSessionsPerUser: 3, touchAfter: 60_000 },
  )
  describeMiddlewareOverStore(
    `RedisStore on ${kind} (single server)`,
    async () =>
      new RedisStore({ client: await clients.single(kind), prefix: testPrefix('mw-renew') }),
    { renew: { afterRequests: 50 } },
  )
  describeMiddlewareOverStore(
    `RedisStore on ${kind} (3-master cluster)`,
    async () =>
      new RedisStore({ client: await clients.cluster(kind), prefix: testPrefix('mw-renew') }),
    { renew: { afterRequests: 50 } },
  )

  describe(`RedisStore on a ${kind} cluster`, () => {
    it('spreads sessions over the masters, and count, listByUser, destroyByUser and clear cover all of them', async () => {
      const prefix = testPrefix('spread')
      const store = new RedisStore({ client: await clients.cluster(kind), prefix })
      const ids = Array.from({ length: 30 }, () => randomUUID())
      const user = `spread-${randomUUID()}`
      await Promise.all(
        ids.map((id) => store.save(id, newChange({ set: { n: '1' }, userId: user }))),
      )
      const perMaster = await Promise.all(
        (await clients.clusterNodes()).map(async ({ host, port }) => {
          const node = new Redis({ host, port })
          try {
            return (await node.keys(`${prefix}*`)).length
          } finally {
            node.disconnect()
          }
        }),
      )
      expect(perMaster.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2)
      expect(await store.count()).toBe(30)
      expect((await store.listByUser(user)).sort()).toEqual([...ids].sort())
      expect(await store.destroyByUser(user)).toBe(30)
      expect(await store.count()).toBe(0)
      await store.clear()
    })
  })
}
