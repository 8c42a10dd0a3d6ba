/**
 * Picks the session store from the environment:
 *   SESSION_STORE_URL=memory: | file:./.sessions | redis://127.0.0.1:6379/?prefix=shop:sess:
 *                     | postgres://user:pass@127.0.0.1/shop[?table=…&schema=…]
 *   SESSION_HOT_STORE_URL=redis://…   with SESSION_STORE_URL: a hot layer over that store
 * or, without SESSION_STORE_URL:
 *   SESSION_STORE=memory (default)
 *   SESSION_STORE=file   SESSION_DIR=./.sessions
 *   SESSION_STORE=redis  REDIS_URL=redis://127.0.0.1:6379  REDIS_PREFIX=shop:sess:
 *                        REDIS_CLIENT=ioredis (default) or node-redis
 * Each store and its client library is imported only when chosen, so the memory store needs none.
 */
import { MemoryStore, type Store } from '../entries/index.js'

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
  if (env['SESSION_STORE_URL'])
    return openStoreFromUrl(env['SESSION_STORE_URL'], env['SESSION_HOT_STORE_URL'] || undefined)
  if (env['SESSION_HOT_STORE_URL'])
    throw new Error('SESSION_HOT_STORE_URL needs SESSION_STORE_URL, the store it sits over')
  const kind = (env['SESSION_STORE'] ?? 'memory').trim().toLowerCase() || 'memory'
  switch (kind) {
    case 'memory': {
      const store = new MemoryStore()
      return {
        store,
        kind,
        detail: 'in this process; sessions end when it stops',
        close: () => store.close(),
      }
    }
    case 'file': {
      const { FileStore } = await import('../entries/file.js')
      const store = new FileStore({ dir: env['SESSION_DIR'] || '.sessions' })
      return { store, kind, detail: `files in ${store.dir}`, close: () => store.close() }
    }
    case 'redis': {
      const { RedisStore } = await import('../entries/redis.js')
      const url = env['REDIS_URL'] || 'redis://127.0.0.1:6379'
      const client = await redisClient(env['REDIS_CLIENT'] || 'ioredis', url)
      const store = new RedisStore({
        client: client.client,
        prefix: env['REDIS_PREFIX'] || 'shop:sess:',
      })
      return {
        store,
        kind,
        detail: `Redis at ${redactUrl(url)} through ${client.name}`,
        async close() {
          await store.close()
          await client.close()
        },
      }
    }
    default:
      throw new Error(
        `SESSION_STORE must be memory, file or redis; got ${JSON.stringify(env['SESSION_STORE'])}`,
      )
  }
}

/** A store from SESSION_STORE_URL (and a hot layer over it from SESSION_HOT_STORE_URL). */
async function openStoreFromUrl(url: string, hotUrl: string | undefined): Promise<OpenedStore> {
  const { createStore } = await import('../entries/create-store.js')
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

/** A connected client of the library REDIS_CLIENT names; only that library is loaded. */
async function redisClient(name: string, url: string) {
  let lastError = ''
  // Both clients reconnect by themselves; say so once per distinct error, not on every retry.
  const onError = (err: Error) => {
    if (err.message !== lastError) console.error(`Redis (${redactUrl(url)}): ${err.message}`)
    lastError = err.message
  }
  const onReady = () => {
    lastError = ''
  }
  if (name === 'ioredis') {
    const { Redis } = await import('ioredis')
    const client = new Redis(url)
    client.on('error', onError).on('ready', onReady)
    return {
      name,
      client,
      close: () =>
        client.quit().then(
          () => {},
          () => client.disconnect(),
        ),
    }
  }
  if (name === 'node-redis') {
    const { createClient } = await import('redis')
    const client = createClient({ url })
    client.on('error', onError).on('ready', onReady)
    await client.connect()
    return { name, client, close: () => client.close().catch(() => client.destroy()) }
  }
  throw new Error(`REDIS_CLIENT must be ioredis or node-redis; got ${JSON.stringify(name)}`)
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
