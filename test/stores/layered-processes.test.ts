/**
 * Two app processes on one LayeredStore pair (Redis hot over PostgreSQL cold): concurrent adds
 * split between them all survive, each process then serves every add it or the other was told
 * was saved, and a logout in one racing a slow write in the other stays destroyed in both
 * layers.
 */
import Redis from 'ioredis'
import { describeTwoProcesses } from '../two-process-suite'
import { PG_URL, dropSchema, makePool, testSchema } from '../support/postgres'
import { redisUrl, testPrefix } from '../support/redis-server'

const schema = testSchema('layered_procs')
const prefix = testPrefix('layered-procs')
afterAll(() => dropSchema(schema))

describeTwoProcesses('LayeredStore (Redis over PostgreSQL)', {
  PG_URL,
  PG_SCHEMA: schema,
  PG_TABLE: 'sessions',
  REDIS_URL: redisUrl(),
  REDIS_PREFIX: prefix,
})

describe('after the two processes ran', () => {
  it('keeps nothing live in the hot layer that the cold store does not have', async () => {
    const pool = makePool({ max: 1 })
    const redis = new Redis(redisUrl())
    try {
      const { rows } = await pool.query(`SELECT id FROM "${schema}".sessions`)
      const ids = rows.map((r: { id: string }) => r.id)
      // Each session alive in Redis is alive in PostgreSQL too: nothing lives only in the hot layer.
      const hotKeys = await redis.keys(`${prefix}*`)
      for (const key of hotKeys) {
        const entry = await redis.hgetall(key)
        const meta = JSON.parse(entry['\u0000concord-layer'] ?? '{}') as {
          dead?: boolean
          marker?: boolean
        }
        if (!meta.dead && !meta.marker) expect(ids).toContain(key.slice(prefix.length))
      }
      expect(hotKeys.length).toBeGreaterThan(0)
    } finally {
      await pool.end()
      redis.disconnect()
    }
  })
})
