/**
 * Id renewal for the PostgreSQL store (the `Renewable` capability of lib/store.ts).
 *
 * A renewal moves the session's row to the new id and leaves a forward behind in a small table
 * of its own, `<table>_renewals (id, renewed_to, until)`: the old id reaches the session until
 * `until` (the grace, never past the session's expiry). The forwards live apart from the
 * sessions so that every other statement on the session table stays as it was; a load joins
 * them in the same statement, so a load costs one round trip still, and save, touch and destroy
 * follow them (see sql.ts). Prune deletes forwards past their grace with the expired rows.
 */
import type { RenewOptions, RenewResult, SaveResult } from '../../lib/store.js'
import { checkRenewOptions } from '../../lib/store-renewal.js'
import type { TableNames } from './sql.js'

const ts = (param: string) => `to_timestamp(${param}::float8 / 1000)`

/**
 * The forwards table of a session table: `"<table>_renewals"` in the same schema.
 *
 * @example
 * ```ts
 * renewalsTable({ table: '"app"."s"', schema: '"app"', bare: 's' }) // '"app"."s_renewals"'
 * ```
 */
export function renewalsTable(names: TableNames): string {
  const bare = `"${names.bare}_renewals"`
  return names.schema === undefined ? bare : `${names.schema}.${bare}`
}

/** What `createTable` adds for renewal: idempotent on tables made before it existed. */
export function renewalSchema(names: TableNames): string[] {
  return [
    `ALTER TABLE ${names.table} ADD COLUMN IF NOT EXISTS renewed_at timestamptz`,
    `CREATE TABLE IF NOT EXISTS ${renewalsTable(names)} (
        id text PRIMARY KEY,
        renewed_to text NOT NULL,
        until timestamptz NOT NULL
      )`,
  ]
}

export interface RenewalStatements {
  /**
   * $1 old id, $2 new id, $3 now, $4 grace (ms). Locks the old id's live row, moves it to the
   * new id (unless that id is live or forwarding) and leaves the forward, all in one statement;
   * returns `renewed`, `found` (the old row was live) and `renewed_to` (an earlier forward).
   */
  renew: string
  /** $1 id, $2 now: the id a live forward of $1 names, if any. */
  resolve: string
}

/**
 * The statements of renewal for one table.
 *
 * @example
 * ```ts
 * const sql = renewalStatements(tableNames('sessions', 'app', undefined))
 * ```
 */
export function renewalStatements(names: TableNames): RenewalStatements {
  const { table } = names
  const forwards = renewalsTable(names)
  return {
    // FOR UPDATE makes a concurrent save or renewal of the old id wait for this one; when it
    // goes on, it finds the row gone and looks up the forward (see `followSave`).
    renew: `WITH old AS MATERIALIZED (
        SELECT * FROM ${table} WHERE id = $1 AND expires_at > ${ts('$3')} FOR UPDATE
      ), moved AS (
        SELECT renewed_to FROM ${forwards} WHERE id = $1 AND until > ${ts('$3')}
      ), taken AS MATERIALIZED (
        SELECT 1 FROM ${table} WHERE id = $2 AND expires_at > ${ts('$3')}
        UNION ALL SELECT 1 FROM ${forwards} WHERE id = $2 AND until > ${ts('$3')}
      ), ins AS (
        INSERT INTO ${table} AS s
          (id, data, version, created_at, expires_at, idle_timeout, cookie, user_id, renewed_at)
        SELECT $2, old.data, old.version, old.created_at, old.expires_at, old.idle_timeout,
          old.cookie, old.user_id, ${ts('$3')}
        FROM old WHERE NOT EXISTS (SELECT 1 FROM taken)
        ON CONFLICT (id) DO UPDATE SET
          data = excluded.data, version = excluded.version, created_at = excluded.created_at,
          expires_at = excluded.expires_at, idle_timeout = excluded.idle_timeout,
          cookie = excluded.cookie, user_id = excluded.user_id, renewed_at = excluded.renewed_at
        WHERE s.expires_at <= ${ts('$3')}
        RETURNING s.id
      ), gone AS (
        DELETE FROM ${table} s USING ins WHERE s.id = $1
      ), fwd AS (
        INSERT INTO ${forwards} AS f (id, renewed_to, until)
        SELECT $1, $2, LEAST(to_timestamp(($3::float8 + $4::float8) / 1000), old.expires_at)
        FROM old, ins
        ON CONFLICT (id) DO UPDATE SET renewed_to = excluded.renewed_to, until = excluded.until
      )
      SELECT EXISTS (SELECT 1 FROM ins) AS renewed, EXISTS (SELECT 1 FROM old) AS found,
        (SELECT renewed_to FROM moved) AS renewed_to`,

    resolve: `SELECT renewed_to FROM ${forwards} WHERE id = $1 AND until > ${ts('$2')}`,
  }
}

/** Runs one statement and returns its rows, every column as text. */
type Run = (statement: string, values: unknown[]) => Promise<Array<Record<string, unknown>>>

/**
 * Renews `oldId` as `newId` in one statement. An old row a concurrent renewal moved while this
 * one waited for its lock is not in this statement's snapshot, nor is its forward: one more
 * look, in a statement of its own, tells a renewal that lost from a session that is gone.
 *
 * @example
 * ```ts
 * await renewSession(run, sql, 'old', 'new', { now: Date.now(), graceMs: 30_000 })
 * ```
 */
export async function renewSession(
  run: Run,
  sql: RenewalStatements,
  oldId: string,
  newId: string,
  options: RenewOptions,
): Promise<RenewResult> {
  checkRenewOptions('PostgresStore', options)
  const [row] = await run(sql.renew, [oldId, newId, options.now, options.graceMs])
  if (row!.renewed === 't') return { ok: true }
  if (typeof row!.renewed_to === 'string')
    return { ok: false, reason: 'renewed', id: row!.renewed_to }
  if (row!.found === 't') return { ok: false, reason: 'taken' }
  const to = await resolveForward(run, sql, oldId, Date.now())
  return to === undefined ? { ok: false, reason: 'gone' } : { ok: false, reason: 'renewed', id: to }
}

/** The id a live forward of `id` names, or undefined. */
export async function resolveForward(
  run: Run,
  sql: RenewalStatements,
  id: string,
  now: number,
): Promise<string | undefined> {
  const [row] = await run(sql.resolve, [id, now])
  return typeof row?.renewed_to === 'string' ? row.renewed_to : undefined
}

/**
 * A save that found no session under `id`: if `id` forwards to a renewed session, the save is
 * made there (by `saveTo`) and says so; otherwise the session is gone.
 *
 * @example
 * ```ts
 * if (!result.ok && result.reason === 'gone') return followSave(run, sql, id, (to) => save(to))
 * ```
 */
export async function followSave(
  run: Run,
  sql: RenewalStatements,
  id: string,
  saveTo: (to: string) => Promise<SaveResult>,
): Promise<SaveResult> {
  const to = await resolveForward(run, sql, id, Date.now())
  if (to === undefined) return { ok: false, reason: 'gone' }
  const result = await saveTo(to)
  return result.ok ? { ...result, renewedTo: result.renewedTo ?? to } : result
}
