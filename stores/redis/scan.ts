/**
 * SCAN over every master for RedisStore's `count` and `clear`: keys are checked by shape, so
 * unrelated keys that share the prefix are never counted or removed.
 */
import { isValidSessionId } from '../../lib/store.js'
import type { RedisConnection, RedisNode } from './client.js'
import type { ConnectRedisReading } from './connect-redis.js'

const SCAN_COUNT = '1000'

/** What a scan needs of its store. */
export interface ScanContext {
  redis: RedisConnection
  prefix: string
  /** Which connect-redis strings to scan for too. */
  legacy: ConnectRedisReading
  timeout: number
  /** Runs `work` under the store's guard, settled by `until`. */
  call<T>(what: string, key: string, until: number, work: () => Promise<T>): Promise<T>
}

/**
 * Calls `onKeys` with batches of session keys (and, with `withIndexes`, user index keys)
 * found by SCAN on each master. Keys are checked by shape, so unrelated keys that share
 * the prefix are never counted or removed.
 */
export async function scanSessions(
  store: ScanContext,
  onKeys: (node: RedisNode, keys: string[]) => void | Promise<void>,
  withIndexes = false,
): Promise<void> {
  const prefix = store.prefix
  const isSession = (key: string, from: string) => isValidSessionId(key.slice(from.length))
  const masters = await store.call('connecting to', 'the cluster', Date.now() + store.timeout, () =>
    store.redis.masters(),
  )
  for (const node of masters) {
    if (withIndexes) {
      // Sessions, indexes, and legacy strings when they share the prefix: everything of ours.
      await scan(store, node, prefix, undefined, (keys) =>
        onKeys(
          node,
          keys.filter((k) => isSession(k, prefix) || k.startsWith(`${prefix}user:`)),
        ),
      )
    } else {
      await scan(store, node, prefix, 'hash', (keys) =>
        onKeys(
          node,
          keys.filter((k) => isSession(k, prefix)),
        ),
      )
    }
    for (const legacy of store.legacy.stringScans(withIndexes)) {
      await scan(store, node, legacy, 'string', (keys) =>
        onKeys(
          node,
          keys.filter((k) => isSession(k, legacy)),
        ),
      )
    }
  }
}

async function scan(
  store: ScanContext,
  node: RedisNode,
  prefix: string,
  type: string | undefined,
  onKeys: (keys: string[]) => void | Promise<void>,
): Promise<void> {
  const pattern = `${escapeGlob(prefix)}*`
  const args =
    type === undefined
      ? ['MATCH', pattern, 'COUNT', SCAN_COUNT]
      : ['MATCH', pattern, 'COUNT', SCAN_COUNT, 'TYPE', type]
  let cursor = '0'
  do {
    const [next, keys] = (await store.call('scan of', pattern, Date.now() + store.timeout, () =>
      node.command(['SCAN', cursor, ...args]),
    )) as [string, string[]]
    cursor = next
    await onKeys(keys)
  } while (cursor !== '0')
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}
