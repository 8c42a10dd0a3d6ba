/**
 * Picks the session store from the environment:
 *   SESSION_STORE_URL=memory: | file:./.sessions | redis://127.0.0.1:6379/?prefix=shop:sess:
 *                     | postgres://user:pass@127.0.0.1/shop[?table=…&schema=…]
 *   SESSION_HOT_STORE_URL=redis://…   with SESSION_STORE_URL: a hot layer over that store
 * or, without SESSION_STORE_URL:
 *   SESSION_STORE=memory (default)
 *   SESSION_STORE=file   SESSION_DIR=./.sessions
 *   SESSION_STORE=redis  REDIS_URL=redis://127.0.0.1:6379  REDIS_PREFIX=shop:sess:
 * Each store and its client library is imported only when chosen, so the memory store needs none.
 */
import { MemoryStore, type Store } from '../lib/index.js'

export interface OpenedStore {
  store: Store
  /** "memory", "file" or "redis" */
  kind: string
  /** Where the sessions live, for the start-up message. */
  detail: string
  /** Closes the store and any connection opened for it. */
  close(): Promise<void>
}

export async function openStoreFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<OpenedStore> {
  if (env['SESSION_STORE_URL']) return openStoreFromUrl(env['SESSION_STORE_URL'], env['SESSION_HOT_STORE_URL'] || undefined)
  if (env['SESSION_HOT_STORE_URL']) throw new Error('SESSION_HOT_STORE_URL needs SESSION_STORE_URL, the store it sits over')
  const kind = (env['SESSION_STORE'] ?? 'memory').trim().toLowerCase() || 'memory'
  switch (kind) {
    case 'memory': {
      const store = new MemoryStore()
      return { store, kind, detail: 'in this process; sessions end when it stops', close: () => store.close() }
    }
    case 'file': {
      const { FileStore } = await import('../stores/file.js')
      const store = new FileStore({ dir: env['SESSION_DIR'] || '.sessions' })
      return { store, kind, detail: `files in ${store.dir}`, close: () => store.close() }
    }
    case 'redis': {
      const [{ RedisStore }, { Redis }] = await Promise.all([import('../stores/redis.js'), import('ioredis')])
      const url = env['REDIS_URL'] || 'redis://127.0.0.1:6379'
      const client = new Redis(url)
      let lastError = ''
      client.on('error', (err: Error) => {
        // ioredis reconnects by itself; say so once per distinct error, not on every retry.
        if (err.message !== lastError) console.error(`Redis (${redactUrl(url)}): ${err.message}`)
        lastError = err.message
      })
      client.on('ready', () => {
        lastError = ''
      })
      const store = new RedisStore({ client, prefix: env['REDIS_PREFIX'] || 'shop:sess:' })
      return {
        store,
        kind,
        detail: `Redis at ${redactUrl(url)}`,
        async close() {
          await store.close()
          await client.quit().catch(() => client.disconnect())
        },
      }
    }
    default:
      throw new Error(`SESSION_STORE must be memory, file or redis; got ${JSON.stringify(env['SESSION_STORE'])}`)
  }
}

/** A store from SESSION_STORE_URL (and a hot layer over it from SESSION_HOT_STORE_URL). */
async function openStoreFromUrl(url: string, hotUrl: string | undefined): Promise<OpenedStore> {
  const { createStore } = await import('../stores/create-store.js')
  const store = await createStore(hotUrl ? { hot: hotUrl, cold: url } : url)
  const kind = hotUrl ? 'layered' : schemeKind(url)
  const detail = hotUrl ? `${redactUrl(hotUrl)} over ${redactUrl(url)}` : redactUrl(url)
  return { store, kind, detail, close: () => store.close() }
}

/** "postgres" for postgres: and postgresql:, "redis" for redis: and rediss:, else the scheme. */
function schemeKind(url: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url.trim())?.[1]?.toLowerCase() ?? 'store'
  return ({ postgresql: 'postgres', rediss: 'redis' } as Record<string, string>)[scheme] ?? scheme
}

/** The URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return '(an unparsable URL)'
  }
}
