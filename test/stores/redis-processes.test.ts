/**
 * Two app processes on one Redis, through each client: 1000 concurrent adds to one cart split
 * between them are all answered 200 and all kept, and a logout in one process racing writes in
 * the other leaves the session destroyed.
 */
import { describeTwoProcesses } from '../two-process-suite'
import { CLIENT_KINDS } from '../support/redis-clients'
import { redisUrl, testPrefix } from '../support/redis-server'

for (const kind of CLIENT_KINDS) {
  describeTwoProcesses(`RedisStore on ${kind}`, {
    REDIS_URL: redisUrl(),
    REDIS_PREFIX: testPrefix('procs'),
    REDIS_CLIENT: kind,
  })
}
