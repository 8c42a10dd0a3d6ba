/**
 * The bench's own redis-server (never the machine's on 6379), and the command counts it keeps.
 */
import Redis from 'ioredis'
import { startRedisServer } from '../test/support/redis-server.js'
import { onCleanup } from './cleanup.js'

export interface BenchRedis {
  port: number
  url: string
  /** Calls per command since the server started (INFO commandstats). */
  commandCounts(): Promise<Record<string, number>>
  stop(): Promise<void>
}

export async function startBenchRedis(): Promise<BenchRedis> {
  const server = await startRedisServer()
  const stopServer = onCleanup(() => server.stop())
  const admin = new Redis(server.url, { lazyConnect: true })
  await admin.connect()
  const stop = onCleanup(async () => {
    admin.disconnect()
    await stopServer()
  })
  return {
    port: server.port,
    url: server.url,
    async commandCounts() {
      const counts: Record<string, number> = {}
      for (const match of (await admin.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
        counts[match[1]!] = Number(match[2])
      }
      return counts
    },
    stop,
  }
}

/**
 * Commands per request between two snapshots, e.g. `{ evalsha: 1, hgetall: 1 }`. Commands a Lua
 * script calls are counted too (Redis counts them), so this says what ran; the proxy says what
 * crossed the network. The admin connection's own INFO is left out.
 */
export function commandsPerRequest(before: Record<string, number>, after: Record<string, number>, requests: number): Record<string, number> {
  const perRequest: Record<string, number> = {}
  for (const [name, calls] of Object.entries(after)) {
    if (name === 'info') continue
    const delta = calls - (before[name] ?? 0)
    if (delta > 0) perRequest[name] = Math.round((delta / requests) * 100) / 100
  }
  return perRequest
}
