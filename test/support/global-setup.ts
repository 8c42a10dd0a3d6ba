import { hasRedisServerBinary, startRedisServer } from './redis-server'

/** Starts the suite's own redis-server when the binary is on PATH; otherwise uses REDIS_URL. */
export default async function globalSetup(): Promise<void> {
  if (hasRedisServerBinary()) {
    const redis = await startRedisServer()
    process.env.CONCORD_TEST_REDIS_URL = redis.url
    ;(globalThis as { __concordRedis?: { stop(): Promise<void> } }).__concordRedis = redis
  } else if (!process.env.REDIS_URL) {
    throw new Error(
      'Tests need Redis: install redis-server (apt-get install redis-server) or set REDIS_URL',
    )
  }
}
