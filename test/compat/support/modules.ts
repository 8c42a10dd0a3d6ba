/**
 * The untyped packages the compat tests run against, typed just enough. They ship no
 * declarations (and @types/express-session would re-declare req.session), so they are
 * required here once.
 */
import type { Express, RequestHandler } from 'express'
import type { LegacyStore } from '../../../entries/express-session.js'

type Callback = (err?: any, value?: any) => void

/** express-session's constructors, as its module exports them. */
export interface ExpressSessionModule {
  (options?: Record<string, unknown>): RequestHandler
  Store: new (...args: any[]) => LegacyStore
  MemoryStore: new () => LegacyStore & { sessions: Record<string, string>; all(cb: Callback): void }
  Cookie: new (options?: Record<string, unknown>) => Record<string, unknown>
  Session: unknown
}

// express-session warns (through depd, once, when it loads) about options left to their
// defaults; the side-by-side tests do that on purpose.
process.env.NO_DEPRECATION = [process.env.NO_DEPRECATION, 'express-session']
  .filter(Boolean)
  .join(',')

export const expressSession = require('express-session') as ExpressSessionModule

/** Express 4 under its npm alias. The app type is Express 5's, which is close enough for these tests. */
export const express4 = require('express4') as () => Express

export type StoreFactory = (
  session: unknown,
) => new (options?: Record<string, unknown>) => LegacyStore & Record<string, any>

/** memorystore: `require('memorystore')(session)`. */
export const createMemoryStore = require('memorystore') as StoreFactory

/** session-file-store: `require('session-file-store')(session)`. */
export const createFileStore = require('session-file-store') as StoreFactory

/** connect-redis 9 extends express-session's own Store. */
export const { RedisStore } = require('connect-redis') as {
  RedisStore: new (options: {
    client: unknown
    prefix?: string
    ttl?: number
    disableTouch?: boolean
  }) => LegacyStore & Record<string, any>
}

export const cookieParser = require('cookie-parser') as (
  secret?: string | string[],
) => RequestHandler
