import type { Pool } from 'pg'

/** The options PostgresStore knows; any other key is refused with a hint. */
export const KNOWN_OPTIONS = [
  'pool',
  'table',
  'schema',
  'createTable',
  'pruneInterval',
  'timeout',
  'legacyTable',
]
/** What connect-pg-simple users pass, and what to do instead. */
export const CONNECT_PG_SIMPLE_HINTS = {
  ttl:
    "that is connect-pg-simple's option; a session's lifetime follows its cookie here: set " +
    'session({ cookie: { maxAge } }), and idleTimeout for browser-session cookies',
  tableName:
    "that is connect-pg-simple's option; use table (and legacyTable: 'session' to read its " +
    'sessions)',
  schemaName: "that is connect-pg-simple's option; use schema",
  conString:
    "that is connect-pg-simple's option; pass a pg Pool: { pool: new pg.Pool({ connectionString " +
    '}) }',
  conObject: "that is connect-pg-simple's option; pass a pg Pool: { pool: new pg.Pool(conObject) }",
  pruneSessionInterval: "that is connect-pg-simple's option; use pruneInterval (ms, or false)",
  createTableIfMissing: "that is connect-pg-simple's option; use createTable (default true)",
}

export const DEFAULT_PRUNE_INTERVAL = 15 * 60_000

/**
 * Options of {@link PostgresStore}, checked when the store is constructed: a bad value throws a
 * TypeError that says what to change.
 *
 * @example
 * ```ts
 * new PostgresStore({ pool, schema: 'app', table: 'sessions', pruneInterval: 5 * 60_000 })
 * new PostgresStore({ pool, legacyTable: 'session' }) // read connect-pg-simple's sessions too
 * ```
 */
export interface PostgresStoreOptions {
  /**
   * A node-postgres `Pool`. The store borrows a client per call and never ends the pool; close
   * it yourself. Give it `connectionTimeoutMillis` so a connect to an unreachable server ends.
   * If the pool has no 'error' listener, the store adds one (a dropped idle connection would
   * otherwise crash the process); add your own to log them.
   */
  pool: Pool
  /** The table, a plain identifier. Default `'concord_sessions'`. */
  table?: string
  /** The table's schema, a plain identifier. Default: the first schema on the search_path. */
  schema?: string
  /**
   * Create the schema, table and indexes on first use if they are missing. Default `true`.
   * Safe when several processes start at once (an advisory lock serializes them). With `false`
   * the store only checks that the table has its columns.
   */
  createTable?: boolean
  /**
   * How often, in ms, expired rows are deleted (each wait is jittered by ±25% so processes do not
   * prune in step), or `false` to prune only when you call {@link PostgresStore.prune}.
   * Default 15 minutes. Expired rows are never returned either way.
   */
  pruneInterval?: number | false
  /**
   * How long, in ms, one store call may take before it fails with a StoreError (status 503,
   * code `ETIMEDOUT`), for example while PostgreSQL is unreachable. Default 2000. A save
   * carries the earlier of this and the middleware's deadline into its statement, so a save
   * that timed out never takes effect later.
   */
  timeout?: number
  /**
   * connect-pg-simple's table (`'session'`, or `'schema.session'`): its sessions are read as
   * well, and each moves into this store's table on its first save.
   */
  legacyTable?: string
}
