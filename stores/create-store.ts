/**
 * `createStore(url)`: a store chosen by configuration, as `SESSION_STORE_URL=postgres://…`.
 * Each store and its client library is imported only when its scheme is asked for, so an app
 * using `memory:` needs neither ioredis nor pg installed.
 */
import { fileURLToPath } from 'node:url'
import type { Closable, Store } from '../lib/store.js'
import { isClosable } from '../lib/store.js'

/** A store made from a URL; `close()` also closes the connection it opened. */
export type CreatedStore = Store & Closable

/** A hot store over a cold one, each given by its URL; see LayeredStore. */
export interface LayeredSpec {
  hot: string
  cold: string
  /** ms a session stays in the hot layer after it was read from cold. */
  hotTtl?: number
  /** Required with a `memory:` hot layer: this is the only process using the cold store. */
  singleProcess?: boolean
}

const SCHEMES = 'memory:, file:<dir>, redis://, rediss://, postgres:// or postgresql://'

/**
 * Makes a store from a URL:
 *
 * | URL | Store |
 * |-----|-------|
 * | `memory:` | MemoryStore (one process) |
 * | `file:./sessions`, `file:///var/lib/app/sessions` | FileStore in that directory |
 * | `redis://[:password@]host:port[/db][?prefix=app:sess:&client=node-redis]`, `rediss://…` (TLS) |
 * RedisStore through ioredis (if installed) or node-redis |
 * | `postgres://user:password@host/db[?table=…&schema=…]`, `postgresql://…` | PostgresStore on a pg
 * Pool |
 * | `{ hot: 'redis://…', cold: 'postgres://…', hotTtl }` | LayeredStore of the two |
 *
 * A URL it cannot use is a TypeError naming the schemes it knows. A password in a URL never
 * appears in an error message. The returned store's `close()` closes the connection it opened.
 *
 * @example
 * ```ts
 * import session from 'concord-session'
 * import { createStore } from 'concord-session/create-store'
 *
 * const store = await createStore(process.env.SESSION_STORE_URL ?? 'memory:')
 * app.use(session(store, { secret: process.env.SESSION_SECRET! }))
 * process.on('SIGTERM', () => store.close())
 * ```
 */
export async function createStore(spec: string | LayeredSpec): Promise<CreatedStore> {
  if (typeof spec === 'object' && spec !== null) return createLayered(spec)
  if (typeof spec !== 'string' || spec.trim() === '') {
    throw new TypeError(
      `createStore: expected a store URL (${SCHEMES}) or { hot, cold }, got ${describe(spec)}`,
    )
  }
  const url = spec.trim()
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase()
  switch (scheme) {
    case 'memory': {
      const { MemoryStore } = await import('./memory/store.js')
      return closable(new MemoryStore())
    }
    case 'file':
      return createFile(url)
    case 'redis':
    case 'rediss':
      return createRedis(parse(url))
    case 'postgres':
    case 'postgresql':
      return createPostgres(parse(url))
    default:
      throw new TypeError(
        `createStore: ${scheme === undefined ? 'not a URL' : `unsupported scheme "${scheme}:"`} ` +
          `in ${redact(url)}; use ${SCHEMES}`,
      )
  }
}

async function createLayered(spec: LayeredSpec): Promise<CreatedStore> {
  if (typeof spec.hot !== 'string' || typeof spec.cold !== 'string') {
    throw new TypeError(
      `createStore: a layered store needs { hot: url, cold: url }, each one of ${SCHEMES}`,
    )
  }
  const { LayeredStore } = await import('./layered.js')
  const hot = await createStore(spec.hot)
  try {
    const cold = await createStore(spec.cold)
    try {
      const options: ConstructorParameters<typeof LayeredStore>[0] = { hot, cold }
      if (spec.hotTtl !== undefined) options.hotTtl = spec.hotTtl
      if (spec.singleProcess !== undefined) options.singleProcess = spec.singleProcess
      return new LayeredStore(options)
    } catch (err) {
      await cold.close()
      throw err
    }
  } catch (err) {
    await hot.close()
    throw err
  }
}

async function createFile(url: string): Promise<CreatedStore> {
  let dir: string
  try {
    dir = url.startsWith('file://')
      ? fileURLToPath(url)
      : decodeURIComponent(url.slice('file:'.length))
  } catch {
    throw new TypeError(
      `createStore: ${redact(url)} is not a usable file URL; write file:./sessions or ` +
        `file:///absolute/path`,
    )
  }
  if (dir === '')
    throw new TypeError(
      'createStore: file: needs a directory, e.g. file:./sessions or file:///var/lib/app/sessions',
    )
  const { FileStore } = await import('./file/store.js')
  return closable(new FileStore({ dir }))
}

async function createRedis(url: URL): Promise<CreatedStore> {
  const prefix = url.searchParams.get('prefix') ?? undefined
  const clientName = url.searchParams.get('client') ?? undefined
  url.searchParams.delete('prefix')
  url.searchParams.delete('client')
  if (clientName !== undefined && clientName !== 'ioredis' && clientName !== 'node-redis') {
    throw new TypeError(
      `createStore: client=${clientName} is not a Redis client it knows; write client=ioredis or ` +
        `client=node-redis`,
    )
  }
  const { RedisStore } = await import('./redis/store.js')
  // Either client works; without ?client= it takes ioredis if installed, else node-redis.
  const opened =
    clientName === 'node-redis'
      ? await nodeRedis(url)
      : await ioredisOrNodeRedis(url, clientName === 'ioredis')
  const options: ConstructorParameters<typeof RedisStore>[0] = { client: opened.client as never }
  if (prefix !== undefined) options.prefix = prefix
  const store = new RedisStore(options)
  return closable(store, opened.close)
}

interface OpenedClient {
  client: unknown
  close(): Promise<void>
}

async function ioredisOrNodeRedis(url: URL, required: boolean): Promise<OpenedClient> {
  let ioredis: unknown
  try {
    ioredis = await import('ioredis')
  } catch (cause) {
    if (required)
      throw new TypeError(
        `createStore: ${url.protocol}// with client=ioredis needs the ioredis package; npm ` +
          `install ioredis`,
        { cause },
      )
    return nodeRedis(url)
  }
  const Redis = (
    ioredis as { Redis: new (url: string, options: object) => import('ioredis').Redis }
  ).Redis
  const client = new Redis(url.toString(), { lazyConnect: false })
  // ioredis reconnects by itself; an unhandled 'error' event would crash the process. Its
  // messages name host and port, never the password.
  client.on('error', () => {})
  return {
    client,
    close: async () => {
      // QUIT would wait in the offline queue through every reconnect attempt (over a minute)
      // while the server is away: a client that is not connected is dropped at once.
      if (client.status !== 'ready') return client.disconnect()
      await client.quit().then(
        () => {},
        () => client.disconnect(),
      )
    },
  }
}

async function nodeRedis(url: URL): Promise<OpenedClient> {
  const redis = (await importClient('redis', url)) as typeof import('redis')
  const client = redis.createClient({ url: url.toString() })
  client.on('error', () => {}) // it reconnects by itself; the store reports failures per call
  // Waited for, but only briefly: a server that is down now must not fail (or hang) createStore,
  // only the calls (a 503) until it is back. (A node-redis socket destroyed while it is still
  // connecting stays open, so close() below should not meet one.)
  const connected = client.connect().then(
    () => true,
    () => false,
  )
  let timer: NodeJS.Timeout | undefined
  await Promise.race([connected, new Promise((resolve) => (timer = setTimeout(resolve, 2000)))])
  clearTimeout(timer)
  return {
    client,
    close: async () => {
      // close() waits for replies in flight, but only on an open connection; while it is still
      // connecting (or reconnecting) there is nothing to wait for, and destroy() ends it at once.
      if (client.isReady) await client.close().catch(() => client.destroy())
      else if (client.isOpen) client.destroy()
    },
  }
}

async function createPostgres(url: URL): Promise<CreatedStore> {
  const table = url.searchParams.get('table') ?? undefined
  const schema = url.searchParams.get('schema') ?? undefined
  url.searchParams.delete('table')
  url.searchParams.delete('schema')
  const [{ PostgresStore }, pg] = await Promise.all([
    import('./postgres/store.js'),
    importClient('pg', url),
  ])
  const Pool = ((pg as { default?: unknown }).default ?? pg) as { Pool: typeof import('pg').Pool }
  const pool = new Pool.Pool({ connectionString: url.toString(), connectionTimeoutMillis: 2000 })
  pool.on('error', () => {}) // an idle connection dropped; the next call reconnects
  const options: ConstructorParameters<typeof PostgresStore>[0] = { pool }
  if (table !== undefined) options.table = table
  if (schema !== undefined) options.schema = schema
  let store
  try {
    store = new PostgresStore(options)
  } catch (err) {
    await pool.end()
    throw err
  }
  return closable(store, () => pool.end())
}

/** Imports an optional peer, or says which package to install. */
async function importClient(name: string, url: URL): Promise<unknown> {
  try {
    return await import(name)
  } catch (cause) {
    throw new TypeError(
      `createStore: ${url.protocol}// needs the ${name} package; npm install ${name}`,
      { cause },
    )
  }
}

function parse(url: string): URL {
  try {
    return new URL(url)
  } catch {
    throw new TypeError(`createStore: ${redact(url)} is not a valid URL; use ${SCHEMES}`)
  }
}

/** The store, with a `close` that also runs `release` (the connection it was given). */
function closable<S extends Store>(store: S, release?: () => Promise<void>): S & CreatedStore {
  const own = isClosable(store) ? store.close.bind(store) : undefined
  const closable: Closable = {
    async close() {
      await own?.()
      await release?.()
    },
  }
  return Object.assign(store, closable)
}

/** The URL with any password replaced, for messages. Unparsable text shows only its scheme. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return JSON.stringify(parsed.toString())
  } catch {
    const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0]
    return scheme ? `a ${JSON.stringify(scheme)} URL` : 'the given text'
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'string') return 'an empty string'
  return typeof value
}
