/**
 * The express-session side of the comparison. These packages ship no types (connect-redis's
 * refer to express-session's, which are not installed), so they are loaded with require() and
 * typed here with just what the bench calls. Declaring them as ambient modules instead would
 * leak into the whole project's typecheck.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

export type Middleware = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void
type Callback = (err?: unknown) => void

/** An express-session store, callback style. */
export interface LegacyStore {
  get(sid: string, callback: (err: unknown, session?: unknown) => void): void
  set(sid: string, session: object, callback: Callback): void
  destroy(sid: string, callback: Callback): void
  length(callback: (err: unknown, count?: number) => void): void
}

export interface ExpressSessionOptions {
  secret: string
  store?: LegacyStore
  resave: boolean
  saveUninitialized: boolean
  cookie: { maxAge: number; sameSite?: 'lax' }
}

export interface ExpressSession {
  (options: ExpressSessionOptions): Middleware
  MemoryStore: new () => LegacyStore
  /** What express-session keeps as `session.cookie` (serialized with the session). */
  Cookie: new (options: ExpressSessionOptions['cookie']) => object
}

export const expressSession = require('express-session') as ExpressSession

type StoreFactory<Options> = (session: ExpressSession) => new (options: Options) => LegacyStore

export const memorystore = require('memorystore') as StoreFactory<{ checkPeriod: number }>

export const sessionFileStore = require('session-file-store') as StoreFactory<{
  path: string
  ttl: number
  logFn: (...args: unknown[]) => void
}>

export const connectRedis = require('connect-redis') as {
  RedisStore: new (options: { client: unknown; prefix: string }) => LegacyStore
}

export const connectPgSimple = require('connect-pg-simple') as (
  session: ExpressSession,
) => new (options: {
  pool: unknown
  schemaName: string
  tableName: string
  createTableIfMissing: boolean
  pruneSessionInterval: number | false
}) => LegacyStore & { close(): void }
