/**
 * The SQL of the PostgreSQL store: identifiers, the table, and one statement per store call.
 *
 * Identifiers (schema, table, legacy table) are checked against a strict pattern and then
 * double-quoted, so no caller-supplied text ever reaches a statement unquoted; every value
 * travels as a bind parameter.
 *
 * Times are `timestamptz` in the table and epoch ms on the wire: `ts($n)` turns a parameter in
 * ms into a timestamptz (exact to the ms, as to_timestamp rounds to the microsecond), `ms(col)`
 * turns a column back. Expiry compares with the app's clock (passed as a parameter, as every
 * store does); the save deadline compares with the server's `clock_timestamp()`, the time the
 * write actually happens.
 */
import { createHash } from 'node:crypto'
import { KEY_EXPIRES } from './codec.js'
import type { TableNames } from './names.js'
import { renewalSchema, renewalsTable } from './renew.js'

export { quoteIdentifier, tableNames, type TableNames } from './names.js'

/** Forwards followed in a row at most: ids renewed again, each within its own grace. */
const MAX_HOPS = 8

const ts = (param: string) => `to_timestamp(${param}::float8 / 1000)`
const ms = (column: string) => `(extract(epoch FROM ${column}) * 1000)::float8`

/** The columns every statement that returns a session selects, from a row source `s`. */
const RECORD = (s: string, data = `${s}.data`) =>
  `${data} AS data, ${s}.cookie, ${s}.version, ${ms(`${s}.created_at`)}::bigint AS created_ms, ` +
  `${ms(`${s}.expires_at`)}::bigint AS expires_ms, ${s}.idle_timeout, ${s}.user_id, ` +
  `${ms(`${s}.renewed_at`)}::bigint AS renewed_ms`

/**
 * Marks the error a save's statement raises when it wrote after its deadline (and so undoes the
 * write).
 */
export const DEADLINE_MARKER = 'concord-session: deadline passed at '

/**
 * A column that fails the whole statement, undoing its write, if it wrote (`wrote` is not null)
 * after the deadline `$d`. It is evaluated after the write (the row it reads comes from the
 * write's RETURNING), so a save held up by a lock or a slow network past its deadline cannot
 * land. The cast of a volatile text to int is the error: plain SQL has no RAISE, and a constant
 * would be folded (and fail) when the statement is planned.
 */
const deadlineGuard = (wrote: string, d: string) =>
  `CASE WHEN ${wrote} IS NOT NULL AND ${d}::float8 IS NOT NULL AND clock_timestamp() > ${ts(d)}
    THEN ('${DEADLINE_MARKER}' || clock_timestamp()::text)::int END AS deadline_guard`

/**
 * The keys of row `s` whose own lifetime ended by $now (ms): the per-key expiries ride in the
 * cookie column's "@keyExpires" member. A save drops them from the data as it writes.
 */
const expiredKeys = (s: string, now: string) =>
  `ARRAY(SELECT e.key FROM jsonb_each_text(COALESCE(${s}.cookie->'${KEY_EXPIRES}', '{}'::jsonb)) e
    WHERE e.value::float8 <= ${now}::float8)`

/**
 * The idle expiry a touch at $touchAt (ms) gives row `s`, capped at created_at + $absolute when
 * given.
 */
const touched = (s: string, touchAt: string, absolute: string) =>
  `LEAST(${touchAt}::float8 + ${s}.idle_timeout,
    COALESCE(${ms(`${s}.created_at`)} + ${absolute}::float8, 'Infinity'::float8))`

export interface Statements {
  /**
   * Creates the table and its indexes, under an advisory lock; a simple (multi-statement) query.
   */
  createTable: string
  /** Fails unless the table has every column the store uses. */
  checkTable: string
  /**
   * $1 id, $2 now: one row, with the live session's columns or NULLs (and the connect-pg-simple
   * row's).
   */
  load: string
  /**
   * $1 id, $2 now, $3 touchAt, $4 absoluteTimeout or null: touches and returns the live session,
   * or deletes it when the touch ends it.
   */
  loadTouch: string
  /**
   * $1 id, $2 now, $3 touchAt, $4 absoluteTimeout or null, $5 touchAfter: as `loadTouch`, but the
   * row is written only when the touch moves its expiry earlier, or later by $5 ms or more.
   */
  loadTouchAfter: string
  /** $1 lock key (bigint): serializes the sign-ins of one user until the transaction ends. */
  lockUser: string
  /**
   * $1 userId, $2 now, $3 id: the user's other live sessions, and whether $3 is live and whose it
   * is.
   */
  userSessions: string
  /** $1 ids, $2 userId: deletes those of the ids the user still owns. */
  evict: string
  /**
   * $1 id, $2 now, $3 expected version, $4 removed keys, $5 changed keys (jsonb), $6 expiresAt,
   * $7 idleTimeout, $8 cookie (jsonb), $9 userId, $10 deadline (ms, server clock).
   * Locks the live row, updates it if its version matches and the deadline has not passed, and
   * returns `saved` (the new version) or, when nothing was written, the current row.
   */
  update: string
  /**
   * $1 id, $2 now, $3 createdAt, $4 data (jsonb), $5 expiresAt, $6 idleTimeout, $7 cookie,
   * $8 userId, $9 deadline. Inserts, replacing only an expired row of the same id (and never
   * over a live connect-pg-simple row); returns `saved`, or the live row it met, and whether the
   * deadline still allowed the write.
   */
  create: string
  /** $1 id, $2 expiresAt, $3 now. */
  touch: string
  /**
   * $1 id, $2 now: deletes the session, or the one renewals within their grace moved it to;
   * returns how many rows it deleted and the last id its forwards led to.
   */
  destroy: string
  /** $1 userId, $2 now. */
  listByUser: string
  /** $1 userId, $2 now: deletes all the user's rows, counts the live ones. */
  destroyByUser: string
  /** $1 now. */
  count: string
  clear: string
  /** $1 now: deletes expired rows, returns how many. */
  prune: string
  /** $1 now: deletes expired rows, returns each one's id and user_id (for lifecycle listeners). */
  pruneListed: string
}

/** Every statement of one store, for a table and (optionally) a connect-pg-simple table. */
export function statements(names: TableNames): Statements {
  const { table, legacy } = names
  // Forwards of renewed ids (see renew.ts): a load joins them when the id has no session row.
  const forwards = renewalsTable(names)
  const forward = (s: string) =>
    `LEFT JOIN ${forwards} f ON f.id = $1 AND f.until > ${ts('$2')} AND ${s}.id IS NULL`
  const index = (suffix: string) => `"${names.bare}_${suffix}"`
  const lockKey = createHash('sha256')
    .update(`concord-session:${table}`)
    .digest()
    .readBigInt64BE(0)
    .toString()

  // A load returns the connect-pg-simple row too, in the same statement, when there is no concord
  // row.
  const legacyColumns =
    legacy === undefined
      ? ''
      : `, l.sess::text AS legacy_sess, ${ms('l.expire::timestamptz')}::bigint AS legacy_expires_ms`
  const legacyJoin = (s: string, extra = '') =>
    legacy === undefined
      ? ''
      : `LEFT JOIN ${legacy} l
          ON l.sid = $1 AND l.expire > ${ts('$2')} AND ${s}.id IS NULL ${extra}`
  const legacyAbsent =
    legacy === undefined
      ? ''
      : `AND NOT EXISTS (SELECT 1 FROM ${legacy} l WHERE l.sid = $1 AND l.expire > ${ts('$2')})`
  const legacyLive =
    legacy === undefined
      ? ''
      : `UNION ALL SELECT 1 FROM ${legacy} l
          WHERE l.expire > ${ts('$1')} AND NOT EXISTS (SELECT 1 FROM ${table} c WHERE c.id = l.sid)`

  // An id within the grace of a renewal touches and destroys the session it names: `hop` is
  // $1 and the ids its live forwards lead to, renewed again within their grace or not.
  const hop = (now: string) =>
    `RECURSIVE hop(id, n) AS (SELECT $1::text, 0 UNION ALL
      SELECT f.renewed_to, hop.n + 1 FROM ${forwards} f JOIN hop ON f.id = hop.id
      WHERE f.until > ${ts(now)} AND hop.n < ${MAX_HOPS})`
  const followed = `ANY(ARRAY(SELECT id FROM hop))`
  const dropForward = `f AS (DELETE FROM ${forwards} WHERE id = $1)`
  const pruneForwards = `pf AS (DELETE FROM ${forwards} WHERE until <= ${ts('$1')})`

  return {
    createTable: [
      // Two processes starting at once must not both run CREATE TABLE: the second would fail
      // on pg_type's unique index. The lock is held to the end of this implicit transaction.
      `SELECT pg_advisory_xact_lock(${lockKey})`,
      names.schema === undefined ? '' : `CREATE SCHEMA IF NOT EXISTS ${names.schema}`,
      `CREATE TABLE IF NOT EXISTS ${table} (
        id text PRIMARY KEY,
        data jsonb NOT NULL,
        version bigint NOT NULL,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        idle_timeout bigint NOT NULL,
        cookie jsonb NOT NULL,
        user_id text,
        renewed_at timestamptz
      )`,
      ...renewalSchema(names),
      `CREATE INDEX IF NOT EXISTS ${index('expires_at')} ON ${table} (expires_at)`,
      `CREATE INDEX IF NOT EXISTS ${index('user_id')} ON ${table} (user_id)
        WHERE user_id IS NOT NULL`,
    ]
      .filter(Boolean)
      .join(';\n'),

    checkTable:
      'SELECT id, data, version, created_at, expires_at, idle_timeout, cookie, user_id, ' +
      `renewed_at FROM ${table} LIMIT 0;\n` +
      `SELECT id, renewed_to, until FROM ${forwards} LIMIT 0` +
      (legacy === undefined ? '' : `;\nSELECT sid, sess, expire FROM ${legacy} LIMIT 0`),

    load: `SELECT ${RECORD('s')}${legacyColumns}, f.renewed_to
      FROM (SELECT 1) one
      LEFT JOIN ${table} s ON s.id = $1 AND s.expires_at > ${ts('$2')}
      ${forward('s')}
      ${legacyJoin('s')}`,

    // UPDATE and DELETE have exclusive conditions, so at most one of them changes the row.
    loadTouch: `WITH kept AS (
        UPDATE ${table} s SET expires_at = to_timestamp(${touched('s', '$3', '$4')} / 1000)
        WHERE s.id = $1 AND s.expires_at > ${ts('$2')} AND ${touched('s', '$3', '$4')} > $2::float8
        RETURNING s.*
      ), ended AS (
        DELETE FROM ${table} s
        WHERE s.id = $1 AND s.expires_at > ${ts('$2')} AND ${touched('s', '$3', '$4')} <= $2::float8
        RETURNING s.id, s.user_id
      )
      SELECT ${RECORD('kept')}${legacyColumns}, f.renewed_to,
        (SELECT coalesce(user_id, '') FROM ended) AS ended_user,
        EXISTS (SELECT 1 FROM ${table} c WHERE c.id = $1 AND c.expires_at > ${ts('$2')}) AS seen
      FROM (SELECT 1) one
      LEFT JOIN kept ON true
      ${forward('kept')}
      ${legacyJoin('kept', 'AND NOT EXISTS (SELECT 1 FROM ended)')}`,

    loadTouchAfter: `WITH cur AS MATERIALIZED (
        SELECT * FROM ${table} s WHERE s.id = $1 AND s.expires_at > ${ts('$2')}
      ), kept AS (
        UPDATE ${table} s SET expires_at = to_timestamp(${touched('s', '$3', '$4')} / 1000)
        FROM cur
        WHERE s.id = cur.id AND ${touched('s', '$3', '$4')} > $2::float8
          AND (${touched('s', '$3', '$4')} < ${ms('s.expires_at')}
            OR ${touched('s', '$3', '$4')} - ${ms('s.expires_at')} >= $5::float8)
        RETURNING s.*
      ), ended AS (
        DELETE FROM ${table} s
        WHERE s.id = $1 AND s.expires_at > ${ts('$2')} AND ${touched('s', '$3', '$4')} <= $2::float8
        RETURNING s.id
      ), r AS (
        SELECT * FROM kept
        UNION ALL
        SELECT * FROM cur WHERE NOT EXISTS (SELECT 1 FROM kept) AND NOT EXISTS (SELECT 1 FROM ended)
      )
      SELECT ${RECORD('r')}${legacyColumns}, f.renewed_to
      FROM (SELECT 1) one
      LEFT JOIN r ON true
      ${forward('r')}
      ${legacyJoin('r', 'AND NOT EXISTS (SELECT 1 FROM ended)')}`,

    lockUser: `SELECT pg_advisory_xact_lock($1::bigint)`,

    userSessions: `SELECT id, ${ms('created_at')}::bigint AS created_ms, user_id, version,
        id = $3 AS own
      FROM ${table}
      WHERE (user_id = $1 OR id = $3) AND expires_at > ${ts('$2')}`,

    evict: `DELETE FROM ${table} WHERE id = ANY($1::text[]) AND user_id = $2`,

    // FOR UPDATE returns the newest committed row even if it changed after this statement's
    // snapshot, so a conflict carries the row that beat this save, not an older one.
    update: `WITH cur AS MATERIALIZED (
        SELECT * FROM ${table} WHERE id = $1 AND expires_at > ${ts('$2')} FOR UPDATE
      ), upd AS (
        UPDATE ${table} s SET
          data = (s.data - $4::text[] - ${expiredKeys('cur', '$2')}) || $5::jsonb,
          version = s.version + 1,
          expires_at = ${ts('$6')}, idle_timeout = $7, cookie = $8::jsonb, user_id = $9
        FROM cur
        WHERE s.id = cur.id AND cur.version = $3
          AND ($10::float8 IS NULL OR clock_timestamp() <= ${ts('$10')})
        RETURNING s.version
      )
      SELECT upd.version AS saved, cur.id IS NOT NULL AS found,
        ${deadlineGuard('upd.version', '$10')},
        ${RECORD('cur', 'CASE WHEN upd.version IS NULL THEN cur.data END')}${legacyColumns}
      FROM (SELECT 1) one LEFT JOIN cur ON true LEFT JOIN upd ON true
      ${legacyJoin('cur')}`,

    create: `WITH gate AS MATERIALIZED (
        SELECT $9::float8 IS NULL OR clock_timestamp() <= ${ts('$9')} AS open
      ), ins AS (
        INSERT INTO ${table} AS s
          (id, data, version, created_at, expires_at, idle_timeout, cookie, user_id)
        SELECT $1, $4::jsonb, 1, ${ts('$3')}, ${ts('$5')}, $6, $7::jsonb, $8
        FROM gate WHERE gate.open
          ${legacyAbsent}
        ON CONFLICT (id) DO UPDATE SET
          data = excluded.data, version = 1, created_at = excluded.created_at,
          expires_at = excluded.expires_at,
          idle_timeout = excluded.idle_timeout, cookie = excluded.cookie, user_id = excluded.user_id
        WHERE s.expires_at <= ${ts('$2')}
        RETURNING s.version
      ), cur AS (
        SELECT * FROM ${table} WHERE id = $1 AND expires_at > ${ts('$2')}
      )
      SELECT ins.version AS saved, cur.id IS NOT NULL AS found, gate.open,
        ${deadlineGuard('ins.version', '$9')}, ${RECORD('cur')}${legacyColumns}
      FROM gate LEFT JOIN ins ON true LEFT JOIN cur ON ins.version IS NULL
      ${legacyJoin('cur', 'AND ins.version IS NULL')}`,

    touch:
      legacy === undefined
        ? `WITH ${hop('$3')}
          UPDATE ${table} SET expires_at = ${ts('$2')}
          WHERE id = ${followed} AND expires_at > ${ts('$3')}`
        : `WITH ${hop('$3')}, c AS (
          UPDATE ${table} SET expires_at = ${ts('$2')}
          WHERE id = ${followed} AND expires_at > ${ts('$3')} RETURNING id
        )
        UPDATE ${legacy} SET expire = ${ts('$2')}
        WHERE sid = $1 AND expire > ${ts('$3')} AND NOT EXISTS (SELECT 1 FROM c)`,

    destroy: `WITH ${hop('$2')}, ${dropForward},
        d AS (DELETE FROM ${table} WHERE id = ${followed} RETURNING 1)
        ${legacy === undefined ? '' : `, l AS (DELETE FROM ${legacy} WHERE sid = $1)`}
      SELECT (SELECT count(*) FROM d)::int AS deleted,
        (SELECT id FROM hop ORDER BY n DESC LIMIT 1) AS last`,

    listByUser: `SELECT id FROM ${table}
      WHERE user_id = $1 AND expires_at > ${ts('$2')} ORDER BY id`,

    destroyByUser: `WITH gone AS (DELETE FROM ${table} WHERE user_id = $1 RETURNING expires_at)
      SELECT count(*) FILTER (WHERE expires_at > ${ts('$2')})::int AS n FROM gone`,

    count: `SELECT count(*)::int AS n
      FROM (SELECT 1 FROM ${table} WHERE expires_at > ${ts('$1')} ${legacyLive}) live`,

    clear:
      legacy === undefined
        ? `WITH f AS (DELETE FROM ${forwards}) DELETE FROM ${table}`
        : `WITH f AS (DELETE FROM ${forwards}), c AS (DELETE FROM ${table}) DELETE FROM ${legacy}`,

    prune:
      legacy === undefined
        ? `WITH ${pruneForwards},
          gone AS (DELETE FROM ${table} WHERE expires_at <= ${ts('$1')} RETURNING 1)
        SELECT count(*)::int AS n FROM gone`
        : `WITH ${pruneForwards},
          gone AS (DELETE FROM ${table} WHERE expires_at <= ${ts('$1')} RETURNING 1),
          old AS (DELETE FROM ${legacy} WHERE expire <= ${ts('$1')} RETURNING 1)
        SELECT ((SELECT count(*) FROM gone) + (SELECT count(*) FROM old))::int AS n`,

    pruneListed:
      legacy === undefined
        ? `WITH ${pruneForwards}
          DELETE FROM ${table} WHERE expires_at <= ${ts('$1')} RETURNING id, user_id`
        : `WITH ${pruneForwards},
          gone AS (DELETE FROM ${table} WHERE expires_at <= ${ts('$1')} RETURNING id, user_id),
          old AS (DELETE FROM ${legacy} WHERE expire <= ${ts('$1')} RETURNING sid)
        SELECT id, user_id FROM gone UNION ALL SELECT sid, NULL FROM old`,
  }
}

/**
 * $1 id, $2 raw sess text as read, $3 data (jsonb), $4 createdAt, $5 expiresAt, $6 idleTimeout,
 * $7 cookie, $8 userId, $9 deadline. Moves a connect-pg-simple session into the concord table
 * with this save's change applied, only if its `sess` is still the text that was read; returns
 * `saved` (version 2), or nothing when the legacy row changed or a concord row already exists.
 */
export function migrateStatement(table: string, legacy: string): string {
  return `WITH gate AS MATERIALIZED (
      SELECT $9::float8 IS NULL OR clock_timestamp() <= ${ts('$9')} AS open
    ), old AS (
      DELETE FROM ${legacy} l USING gate
      WHERE gate.open AND l.sid = $1 AND l.sess::text = $2 RETURNING l.sid
    ), ins AS (
      INSERT INTO ${table}
        (id, data, version, created_at, expires_at, idle_timeout, cookie, user_id)
      SELECT old.sid, $3::jsonb, 2, ${ts('$4')}, ${ts('$5')}, $6, $7::jsonb, $8 FROM old
      ON CONFLICT (id) DO NOTHING
      RETURNING version
    )
    SELECT ins.version AS saved, gate.open, ${deadlineGuard('ins.version', '$9')}
    FROM gate LEFT JOIN ins ON true`
}
