/**
 * The middleware suite (200 concurrent adds to one cart, 200 concurrent creates, a logout
 * racing a slow write, concurrent sign-ins under maxSessionsPerUser) with encryption at rest
 * on, over real stores: sealing each value must lose no update and bring nothing back.
 */
import { randomBytes } from 'node:crypto'
import { MemoryStore } from '../../stores/memory/store'
import { RedisStore } from '../../entries/redis'
import { describeMiddlewareOverStore } from '../middleware-store-suite'
import { TestClients } from '../support/redis-clients'
import { testPrefix } from '../support/redis-server'

const encrypt = { keys: [randomBytes(32), randomBytes(32)] }
const clients = new TestClients()
afterAll(() => clients.closeAll())

describeMiddlewareOverStore('MemoryStore', async () => new MemoryStore(), { encrypt })
describeMiddlewareOverStore('MemoryStore', async () => new MemoryStore(), {
  encrypt,
  maxSessionsPerUser: 3,
})
describeMiddlewareOverStore('MemoryStore', async () => new MemoryStore(), {
  encrypt,
  observed: true,
})
describeMiddlewareOverStore(
  'RedisStore on ioredis (single server)',
  async () =>
    new RedisStore({ client: await clients.single('ioredis'), prefix: testPrefix('enc') }),
  { encrypt },
)
describeMiddlewareOverStore(
  'RedisStore on node-redis (single server)',
  async () =>
    new RedisStore({ client: await clients.single('node-redis'), prefix: testPrefix('enc') }),
  { encrypt, maxSessionsPerUser: 3 },
)
