/**
 * The session middleware of each system, configured alike: same secret, same one-day cookie,
 * no resave, no saving of empty sessions (concord's defaults, set explicitly on express-session).
 */
import Redis from 'ioredis'
import { createClient } from 'redis'
import session, { MemoryStore, type Store } from '../../lib/index.js'
import { connectRedis, expressSession, memorystore, sessionFileStore, type ExpressSessionOptions, type Middleware } from '../peers.js'
import { MAX_AGE_MS, SECRET, storeModulePath, type SystemId } from '../systems.js'

export interface ServerConfig {
  system: SystemId
  /** For the Redis systems. */
  redisUrl?: string
  /** For the file systems: a directory of their own. */
  dir?: string
}

export interface BuiltMiddleware {
  middleware: Middleware | undefined
  close(): Promise<void>
}

const ES_OPTIONS: Omit<ExpressSessionOptions, 'store'> = {
  secret: SECRET,
  resave: false,
  saveUninitialized: false,
  cookie: { maxAge: MAX_AGE_MS, sameSite: 'lax' },
}

export async function buildMiddleware(config: ServerConfig): Promise<BuiltMiddleware> {
  const none = async () => {}
  switch (config.system) {
    case 'bare':
      return { middleware: undefined, close: none }

    case 'concord-memory':
      return concord(new MemoryStore(), none)

    case 'concord-redis': {
      const client = new Redis(required(config.redisUrl, 'redisUrl'))
      client.on('error', (err: Error) => console.error('bench concord-redis:', err.message))
      const { RedisStore } = loadStore('concord-redis') as {
        RedisStore: new (options: { client: Redis; prefix: string }) => Store
      }
      return concord(new RedisStore({ client, prefix: 'bench:concord:' }), async () => void (await client.quit()))
    }

    case 'concord-file': {
      const { FileStore } = loadStore('concord-file') as {
        FileStore: new (options: { dir: string }) => Store
      }
      return concord(new FileStore({ dir: required(config.dir, 'dir') }), none)
    }

    case 'es-memory':
      return { middleware: expressSession({ ...ES_OPTIONS, store: new expressSession.MemoryStore() }), close: none }

    case 'es-memorystore': {
      const MemoryStore = memorystore(expressSession)
      // Prune once a day, as memorystore's README suggests for a one-day cookie.
      return { middleware: expressSession({ ...ES_OPTIONS, store: new MemoryStore({ checkPeriod: MAX_AGE_MS }) }), close: none }
    }

    case 'es-connect-redis': {
      const client = createClient({ url: required(config.redisUrl, 'redisUrl') })
      client.on('error', (err: Error) => console.error('bench es-connect-redis:', err.message))
      await client.connect()
      const store = new connectRedis.RedisStore({ client, prefix: 'bench:cr:' })
      return { middleware: expressSession({ ...ES_OPTIONS, store }), close: async () => void (await client.quit()) }
    }

    case 'es-file-store': {
      const FileStore = sessionFileStore(expressSession)
      const store = new FileStore({ path: required(config.dir, 'dir'), ttl: MAX_AGE_MS / 1000, logFn: () => {} })
      return { middleware: expressSession({ ...ES_OPTIONS, store }), close: none }
    }
  }
}

function concord(store: Store, closeClient: () => Promise<void>): BuiltMiddleware {
  return {
    middleware: session(store, { secret: SECRET, cookie: { maxAge: MAX_AGE_MS } }),
    async close() {
      await store.close?.()
      await closeClient()
    },
  }
}

/**
 * require(), not import(): the store must share this process's module instances of lib/
 * (StoreError identity), and the path is computed so the typecheck passes before the store exists.
 */
function loadStore(id: SystemId): unknown {
  return require(storeModulePath(id)!)
}

function required(value: string | undefined, name: string): string {
  if (!value) throw new Error(`bench server: ${name} is required for this system`)
  return value
}
