/**
 * session() over RedisStore, through each client, while Redis hangs (SIGSTOP) or is unreachable
 * (connections reset and refused at a proxy): every request is answered within its bound, what
 * each was told is what is stored, and a logout stays a logout.
 */
import { describeFaults } from '../fault-suite'
import { faultyRedis } from '../support/faulty-stores'
import { CLIENT_KINDS, TestClients } from '../support/redis-clients'
import { testPrefix } from '../support/redis-server'

const TIMEOUT = 1000
const clients = new TestClients()
afterAll(() => clients.closeAll())

for (const kind of CLIENT_KINDS) {
  describeFaults(
    `RedisStore on ${kind}`,
    () => faultyRedis(clients, kind, testPrefix('mw-faults'), TIMEOUT),
    { storeTimeout: TIMEOUT },
  )
}
