import createDebug from 'debug'
import type {
  LoadOptions,
  Renewable,
  RenewOptions,
  RenewResult,
  SaveResult,
  SessionChange,
  SessionRecord,
} from '../../lib/store.js'
import type { FullStore } from '../../lib/full-store.js'
import { isValidSessionId, touchIsDue, touchedExpiry, withoutExpiredKeys } from '../../lib/store.js'
import { effectiveDeadline, toRecord } from './codec.js'
import { StatementRunner } from './runner.js'
import { migrateStatement, statements, tableNames, type Statements } from './sql.js'
import { followSave, renewalStatements, renewSession } from './renew.js'
import { forwarded } from '../../lib/store-renewal.js'
import { isPositiveNumber, rejectUnknownKeys, requirePositive } from '../../lib/check-options.js'
import { LifecycleListeners, type StoreNoticeListener } from '../../lib/store-notices.js'
import {
  CONNECT_PG_SIMPLE_HINTS,
  DEFAULT_PRUNE_INTERVAL,
  KNOWN_OPTIONS,
  type PostgresStoreOptions,
} from './options.js'
import { legacyRecord, saveRow, type Row } from './save.js'
import { saveLimited, type LimitedSaveContext } from './user-limit.js'

export type { PostgresStoreOptions } from './options.js'

const debug = createDebug('concord-session:postgres')

/**
 * A session store on PostgreSQL, through node-postgres.
 *
 * One row per session: `data jsonb` (each session key's JSON text), `version`, `created_at`,
 * `expires_at`, `idle_timeout`, `cookie jsonb` (this session's cookie overrides) and `user_id`,
 * with indexes on `expires_at` and `user_id`.
 *
 * Round trips: a load with its touch is one statement, and so is a save: it locks the row,
 * checks the version and writes only the changed keys (`data - removed || changed`), or
 * returns the row that beat it, in the same statement. A read request costs one round trip and a
 * write request two.
 *
 * Failure: every call settles within `timeout` ms, with a StoreError (status 503) when
 * PostgreSQL is unreachable, and works again once it is back. A save refuses to apply after
 * its deadline, checked with `clock_timestamp()` in the statement itself (the app's and the
 * database's clocks are assumed to agree, as NTP keeps them). A row it cannot read is a
 * StoreError naming the session.
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import session from 'concord-session'
 * import { PostgresStore } from 'concord-session/postgres'
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, connectionTimeoutMillis: 2000 })
 * pool.on('error', (err) => console.error('postgres', err.message))
 * app.use(session(new PostgresStore({ pool }), { secret: process.env.SESSION_SECRET! }))
 * ```
 */
export class PostgresStore implements FullStore, Renewable {
  /** `maxSessionsPerUser` is enforced in one transaction under a per-user advisory lock. */
  readonly enforcesUserLimit = true
  readonly #sql: Statements
  readonly #renewal: ReturnType<typeof renewalStatements>
  readonly #notices = new LifecycleListeners()
  readonly #migrate: string | undefined
  readonly #table: string
  readonly #timeout: number
  readonly #pruneInterval: number | false
  readonly #runner: StatementRunner
  readonly #limited: LimitedSaveContext
  #timer: NodeJS.Timeout | undefined
  #closed = false

  constructor(options: PostgresStoreOptions) {
    const {
      pool,
      table = 'concord_sessions',
      schema,
      createTable = true,
      pruneInterval = DEFAULT_PRUNE_INTERVAL,
      timeout = 2000,
      legacyTable,
    } = options ?? ({} as PostgresStoreOptions)
    rejectUnknownKeys('PostgresStore', options ?? {}, KNOWN_OPTIONS, CONNECT_PG_SIMPLE_HINTS)
    if (
      !pool ||
      typeof pool.connect !== 'function' ||
      typeof (pool as { totalCount?: unknown }).totalCount !== 'number'
    ) {
      throw new TypeError(
        'PostgresStore: pool must be a node-postgres Pool, e.g. new PostgresStore({ pool: new ' +
          'pg.Pool({ connectionString }) })',
      )
    }
    if (typeof createTable !== 'boolean')
      throw new TypeError(
        `PostgresStore: createTable must be true or false, got ${JSON.stringify(createTable)}`,
      )
    if (pruneInterval !== false && !isPositiveNumber(pruneInterval)) {
      throw new TypeError(
        `PostgresStore: pruneInterval must be a positive number of ms or false, got ` +
          `${String(pruneInterval)}`,
      )
    }
    requirePositive('PostgresStore', 'timeout', timeout, 'ms')
    const names = tableNames(table, schema, legacyTable)
    this.#table = names.table
    this.#sql = statements(names)
    this.#renewal = renewalStatements(names)
    this.#migrate =
      names.legacy === undefined ? undefined : migrateStatement(names.table, names.legacy)
    this.#timeout = timeout
    this.#pruneInterval = pruneInterval
    // node-postgres reports a dropped idle connection as an 'error' event on the pool, which
    // crashes the process when nobody listens. The next call reconnects; log it for debugging.
    if (pool.listenerCount('error') === 0)
      pool.on('error', (err) => debug('idle connection of %s failed: %s', names.table, err.message))
    const sql = this.#sql
    this.#runner = new StatementRunner(pool, timeout, names.table, async (client) => {
      // Once per store, on the first connection borrowed: create the table, or check it.
      if (createTable) await client.query(sql.createTable)
      await client.query(sql.checkTable)
    })
    this.#limited = { runner: this.#runner, sql, table: names.table, migrate: this.#migrate }
    this.#schedulePrune()
  }

  /**
   * The session, or `null` if unknown, expired, or past its absolute timeout at `touchAt`.
   * With `touchAt`, the idle expiry moves in the same statement.
   *
   * @example
   * ```ts
   * const record = await store.load(id, { touchAt: Date.now(), absoluteTimeout: 12 * 3_600_000 })
   * ```
   */
  async load(id: string, options: LoadOptions = {}): Promise<SessionRecord | null> {
    if (!isValidSessionId(id)) return null
    const now = Date.now()
    const { touchAt, touchAfter } = options
    const [row] =
      touchAt === undefined
        ? await this.#query('load of session', id, 'load', [id, now])
        : await this.#query('load of session', id, touchAfter ? 'loadTouchAfter' : 'loadTouch', [
            id,
            now,
            touchAt,
            options.absoluteTimeout ?? null,
            ...(touchAfter ? [touchAfter] : []),
          ])
    // Keys past their own lifetime are left out; the next save drops them from the row.
    if (row && row.data !== null) return withoutExpiredKeys(toRecord(id, row), now)
    if (row?.renewed_to) return forwarded(await this.load(row.renewed_to, options), row.renewed_to)
    // The row was live, but a renewal or destroy that held it took it meanwhile: look again.
    if (row?.seen === 't' && row.ended_user === null) return this.load(id, options)
    if (typeof row?.ended_user === 'string')
      this.#notices.expired(id, 'load', row.ended_user || null)
    if (!row?.legacy_sess) return null
    // A connect-pg-simple session, until its first save moves it.
    const record = legacyRecord(id, row, now)
    if (touchAt !== undefined) {
      const touched = touchedExpiry(record, touchAt, options.absoluteTimeout)
      if (touched <= now) return null
      if (!touchIsDue(record.expiresAt, touched, touchAfter)) return record
      record.expiresAt = touched
      await this.touch(id, record.expiresAt)
    }
    return record
  }

  /**
   * Writes the changed keys against `expectedVersion` in one statement, or answers with the
   * current record (a conflict) or `'gone'`. Rejects with code `ETIMEDOUT` if the deadline
   * passed first; the write then never happens.
   *
   * @example
   * ```ts
   * const result = await store.save(id, { ...change, expectedVersion: record.version })
   * if (!result.ok && result.reason === 'conflict') retryOnto(result.current)
   * ```
   */
  async save(id: string, change: SessionChange): Promise<SaveResult> {
    if (!isValidSessionId(id))
      throw new TypeError(`PostgresStore: save needs a valid session id, got ${JSON.stringify(id)}`)
    const deadline = effectiveDeadline(change, Date.now() + this.#timeout)
    const result =
      change.userLimit !== undefined && change.userId !== null
        ? await saveLimited(this.#limited, id, change, change.userId, change.userLimit, deadline)
        : await saveRow(id, change, deadline, this.#query.bind(this), this.#migrate)
    if (result.ok || result.reason !== 'gone') return result
    return followSave(this.#run(id), this.#renewal, id, (to) => this.save(to, change))
  }

  /**
   * Moves the session to `newId` in one statement, keeping its data, version, owner and times;
   * `oldId` forwards to it for `graceMs` (never past its expiry). See `Renewable`.
   *
   * @example
   * ```ts
   * await store.renew(oldId, newId, { now: Date.now(), graceMs: 30_000 })
   * ```
   */
  async renew(oldId: string, newId: string, options: RenewOptions): Promise<RenewResult> {
    for (const id of [oldId, newId])
      if (!isValidSessionId(id))
        throw new TypeError(
          `PostgresStore: renew needs valid session ids, got ${JSON.stringify(id)}`,
        )
    return renewSession(this.#run(oldId), this.#renewal, oldId, newId, options)
  }

  #run(id: string) {
    return (text: string, values: unknown[]) =>
      this.#runner.run<Record<string, unknown>>('renewal of session', id, text, values)
  }

  /**
   * Sets the idle expiry of a live session; never creates one.
   *
   * @example
   * ```ts
   * await store.touch(id, Date.now() + 3_600_000)
   * ```
   */
  async touch(id: string, expiresAt: number): Promise<void> {
    if (!isValidSessionId(id)) return
    await this.#query('touch of session', id, 'touch', [id, expiresAt, Date.now()])
  }

  /**
   * Deletes the session's row (and its connect-pg-simple row, with `legacyTable`).
   *
   * @example
   * ```ts
   * await store.destroy(id)
   * ```
   */
  async destroy(id: string): Promise<void> {
    if (!isValidSessionId(id)) return
    const [row] = await this.#query('destroy of session', id, 'destroy', [id, Date.now()])
    // The session its forwards led to was renewed again as this ran: follow that renewal too.
    const { deleted, last } = row as unknown as { deleted: string; last: string }
    if (Number(deleted) === 0 && last !== id) await this.destroy(last)
  }

  /**
   * Ids of the user's live sessions, through the index on `user_id`.
   *
   * @example
   * ```ts
   * const devices = await store.listByUser(user.id)
   * ```
   */
  async listByUser(userId: string): Promise<string[]> {
    const rows = await this.#query('listByUser of user', userId, 'listByUser', [userId, Date.now()])
    return rows.map((row) => (row as unknown as { id: string }).id)
  }

  /**
   * Signs the user out everywhere in one statement, and resolves to the number of live
   * sessions it ended.
   *
   * @example
   * ```ts
   * await store.destroyByUser(req.session.accountId)
   * ```
   */
  async destroyByUser(userId: string): Promise<number> {
    const [row] = await this.#query('destroyByUser of user', userId, 'destroyByUser', [
      userId,
      Date.now(),
    ])
    const count = Number((row as unknown as { n: string }).n)
    this.#notices.signedOut(userId, count)
    return count
  }

  /**
   * Number of live sessions (and live connect-pg-simple sessions, with `legacyTable`).
   *
   * @example
   * ```ts
   * metrics.gauge('sessions', await store.count())
   * ```
   */
  async count(): Promise<number> {
    const [row] = await this.#query('count of', this.#table, 'count', [Date.now()])
    return Number((row as unknown as { n: string }).n)
  }

  /**
   * Deletes every session in the table (and in the connect-pg-simple table, with `legacyTable`).
   *
   * @example
   * ```ts
   * afterAll(() => store.clear())
   * ```
   */
  async clear(): Promise<void> {
    await this.#query('clear of', this.#table, 'clear', [])
  }

  /**
   * Deletes expired rows now and resolves to how many. The store also runs it on a timer
   * (`pruneInterval`); call it from a cron job instead with `pruneInterval: false`.
   *
   * @example
   * ```ts
   * const removed = await store.prune()
   * ```
   */
  async prune(): Promise<number> {
    if (this.#notices.active) {
      // Listed only while someone listens: a plain prune returns one number.
      const rows = (await this.#query('prune of', this.#table, 'pruneListed', [
        Date.now(),
      ])) as unknown as Array<{ id: string; user_id: string | null }>
      for (const row of rows) this.#notices.expired(row.id, 'prune', row.user_id)
      return rows.length
    }
    const [row] = await this.#query('prune of', this.#table, 'prune', [Date.now()])
    return Number((row as unknown as { n: string }).n)
  }

  /**
   * Reports rows removed expired (by `prune`, or at a load whose touch met the absolute
   * timeout) and `destroyByUser` calls; the middleware turns them into `expired` and
   * `signedOutEverywhere` events. A row past its idle expiry is invisible to a load, so it is
   * reported by the prune that deletes it.
   *
   * @example
   * ```ts
   * const stop = store.onLifecycle((notice) => console.log(notice.type))
   * ```
   */
  onLifecycle(listener: StoreNoticeListener): () => void {
    return this.#notices.add(listener)
  }

  /** Stops the prune timer. The pool is the caller's: end it yourself. */
  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
  }

  #schedulePrune(): void {
    if (this.#pruneInterval === false || this.#closed) return
    const wait = this.#pruneInterval * (0.75 + Math.random() * 0.5)
    this.#timer = setTimeout(() => {
      this.prune()
        .then((n) => debug('pruned %d expired sessions from %s', n, this.#table))
        .catch((err: unknown) => debug('prune of %s failed: %O', this.#table, err))
        .finally(() => this.#schedulePrune())
    }, wait)
    this.#timer.unref()
  }

  #query(
    what: string,
    subject: string,
    statement: keyof Statements | string,
    values: unknown[],
    until?: number,
  ): Promise<Row[]> {
    const text = statement in this.#sql ? this.#sql[statement as keyof Statements] : statement
    return this.#runner.run<Row>(what, subject, text, values, until)
  }
}
