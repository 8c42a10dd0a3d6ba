/**
 * The session middleware of each system, configured alike: same secret, same one-day cookie,
 * no resave, no saving of empty sessions (concord's defaults, set explicitly on express-session).
 */
import Redis from 'ioredis'
import pg from 'pg'
import { createClient } from 'redis'
import session, { isClosable, MemoryStore, type Store } from '../../entries/index.js'
import { FileStore } from '../../entries/file.js'
import { LayeredStore } from '../../entries/layered.js'
import { PostgresStore } from '../../entries/postgres.js'
import { limitSession } from '../limit.js'
import { RedisStore } from '../../entries/redis.js'
import {
  connectPgSimple,
  connectRedis,
  expressSession,
  memorystore,
  sessionFileStore,
  type ExpressSessionOptions,
  type Middleware,
} from '../peers.js'
import { MAX_AGE_MS, SECRET, type SystemId } from '../systems.js'

export interface ServerConfig {
  system: SystemId
  /** For the Redis systems. */
  redisUrl?: string
  /** For the file systems: a directory of their own. */
  dir?: string
  /** For the PostgreSQL systems: the database, and the run's own schema in it. */
  pgUrl?: string
  pgSchema?: string
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

    case 'limit':
      return { middleware: limitSession({ secret: SECRET, maxAge: MAX_AGE_MS }), close: none }

    case 'concord-memory':
      return concord(new MemoryStore(), none)

    case 'concord-redis': {
      const client = new Redis(required(config.redisUrl, 'redisUrl'))
      client.on('error', (err: Error) => console.error('bench concord-redis:', err.message))
      return concord(
        new RedisStore({ client, prefix: 'bench:concord:' }),
        async () => void (await client.quit()),
      )
    }

    case 'concord-redis-node': {
      // The client connect-redis users already have: the same createClient() as es-connect-redis.
      const client = createClient({ url: required(config.redisUrl, 'redisUrl') })
      client.on('error', (err: Error) => console.error('bench concord-redis-node:', err.message))
      await client.connect()
      return concord(
        new RedisStore({ client, prefix: 'bench:concord-node:' }),
        async () => void (await client.quit()),
      )
    }

    case 'concord-file':
      return concord(new FileStore({ dir: required(config.dir, 'dir') }), none)

    case 'concord-postgres': {
      const pool = pgPool(config)
      const store = new PostgresStore({
        pool,
        schema: required(config.pgSchema, 'pgSchema'),
        table: 'concord_sessions',
      })
      await store.count() // creates the table now, not inside the first request's deadline
      return concord(store, () => pool.end())
    }

    case 'concord-layered': {
      // Redis (its own prefix) over PostgreSQL (its own table): the layout createStore builds.
      const redis = new Redis(required(config.redisUrl, 'redisUrl'))
      redis.on('error', (err: Error) => console.error('bench concord-layered:', err.message))
      const pool = pgPool(config)
      const cold = new PostgresStore({
        pool,
        schema: required(config.pgSchema, 'pgSchema'),
        table: 'concord_layered',
      })
      await cold.count() // creates the table now, not inside the first request's deadline
      const store = new LayeredStore({
        hot: new RedisStore({ client: redis, prefix: 'bench:layered:' }),
        cold,
      })
      return concord(store, async () => {
        await redis.quit()
        await pool.end()
      })
    }

    case 'es-memory':
      return {
        middleware: expressSession({ ...ES_OPTIONS, store: new expressSession.MemoryStore() }),
        close: none,
      }

    case 'es-memorystore': {
      const Memorystore = memorystore(expressSession)
      // Prune once a day, as memorystore's README suggests for a one-day cookie.
      return {
        middleware: expressSession({
          ...ES_OPTIONS,
          store: new Memorystore({ checkPeriod: MAX_AGE_MS }),
        }),
        close: none,
      }
    }

    case 'es-connect-redis': {
      const client = createClient({ url: required(config.redisUrl, 'redisUrl') })
      client.on('error', (err: Error) => console.error('bench es-connect-redis:', err.message))
      await client.connect()
      const store = new connectRedis.RedisStore({ client, prefix: 'bench:cr:' })
      return {
        middleware: expressSession({ ...ES_OPTIONS, store }),
        close: async () => void (await client.quit()),
      }
    }

    case 'es-file-store': {
      const SessionFileStore = sessionFileStore(expressSession)
      const store = new SessionFileStore({
        path: required(config.dir, 'dir'),
        ttl: MAX_AGE_MS / 1000,
        logFn: () => {},
      })
      return { middleware: expressSession({ ...ES_OPTIONS, store }), close: none }
    }

    case 'es-pg-simple': {
      const pool = pgPool(config)
      const PgStore = connectPgSimple(expressSession)
      const store = new PgStore({
        pool,
        schemaName: required(config.pgSchema, 'pgSchema'),
        tableName: 'session',
        createTableIfMissing: true,
        // Prune once a day, like the other stores with a one-day cookie.
        pruneSessionInterval: MAX_AGE_MS / 1000,
      })
      // Creates the table now, as the concord systems do (any first query does).
      await new Promise<void>((resolve, reject) =>
        store.get('bench-no-such-session', (err) => (err ? reject(err as Error) : resolve())),
      )
      return {
        middleware: expressSession({ ...ES_OPTIONS, store }),
        close: async () => {
          store.close()
          await pool.end()
        },
      }
    }
  }
}

/**
 * A pool per server, sized above the probes' concurrency per store call so that 200
 * concurrent requests queue in the pool rather than in PostgreSQL's connection limit.
 */
function pgPool(config: ServerConfig): pg.Pool {
  const pool = new pg.Pool({
    connectionString: required(config.pgUrl, 'pgUrl'),
    max: 10,
    connectionTimeoutMillis: 10_000,
  })
  pool.on('error', (err: Error) => console.error(`bench ${config.system}:`, err.message))
  return pool
}

function concord(store: Store, closeClient: () => Promise<void>): BuiltMiddleware {
  return {
    middleware: session(store, { secret: SECRET, cookie: { maxAge: MAX_AGE_MS } }),
    async close() {
      if (isClosable(store)) await store.close()
      await closeClient()
    },
  }
}

function required(value: string | undefined, name: string): string {
  if (!value) throw new Error(`bench server: ${name} is required for this system`)
  return value
}
