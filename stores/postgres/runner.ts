/**
 * Runs the PostgreSQL store's statements on pooled connections, each within a time bound, and
 * turns every failure into a StoreError.
 */
import type { Pool, PoolClient } from 'pg'
import createDebug from 'debug'
import { StoreError } from '../../lib/store.js'
import { errorMessage, isCode, toStoreError } from '../../lib/store-errors.js'
import { TEXT_TYPES } from './codec.js'
import { DEADLINE_MARKER } from './sql.js'

const debug = createDebug('concord-session:postgres')

export class StatementRunner {
  #ready: Promise<void> | undefined

  /** `prepare` runs once, on the first connection borrowed (again after it fails). */
  constructor(
    readonly pool: Pool,
    readonly timeout: number,
    readonly table: string,
    readonly prepare: (client: PoolClient) => Promise<void>,
  ) {}

  /**
   * Runs one statement and settles by `until` (default: now + timeout). After a timeout the
   * connection is discarded, not returned to the pool: its statement may still be in flight.
   */
  run<R>(
    what: string,
    subject: string,
    text: string,
    values: unknown[],
    until = Date.now() + this.timeout,
    /** Continues on the same connection after `text` ran (a transaction's body). */
    then?: (client: PoolClient) => Promise<R[]>,
  ): Promise<R[]> {
    let client: PoolClient | undefined
    let timedOut = false
    const run = async (): Promise<R[]> => {
      const borrowed = await this.pool.connect()
      if (timedOut) {
        borrowed.release()
        throw new Error('timed out before a connection was free')
      }
      client = borrowed
      let failure: unknown
      // A socket error is emitted on the client as well as failing the query; without a
      // listener it would crash the process.
      const onError = (err: unknown) =>
        debug('connection error during %s %s: %O', what, subject, err)
      borrowed.on('error', onError)
      try {
        await (this.#ready ??= this.prepare(borrowed).catch((err: unknown) => {
          this.#ready = undefined
          throw err
        }))
        const result = await borrowed.query({ text, values, types: TEXT_TYPES })
        return then ? await then(borrowed) : (result.rows as R[])
      } catch (err) {
        failure = err
        throw err
      } finally {
        borrowed.off('error', onError)
        // A database error leaves the connection usable; anything else (a dropped socket) does not.
        if (!timedOut)
          borrowed.release(
            failure !== undefined && !isDatabaseError(failure) ? (failure as Error) : undefined,
          )
      }
    }

    return new Promise<R[]>((resolve, reject) => {
      const started = Date.now()
      const timer = setTimeout(
        () => {
          timedOut = true
          reject(
            new StoreError(
              `PostgresStore: ${what} ${subject} timed out after ${Math.max(0, until - started)} ` +
                `ms (is PostgreSQL reachable?)`,
              { code: 'ETIMEDOUT' },
            ),
          )
          client?.release(
            new Error('PostgresStore: statement timed out; discarding its connection'),
          )
        },
        Math.max(0, until - started),
      )
      run().then(
        (rows) => {
          clearTimeout(timer)
          if (!timedOut) resolve(rows)
        },
        (err: unknown) => {
          clearTimeout(timer)
          if (!timedOut) reject(failure(err, what, subject, this.table))
        },
      )
    })
  }
}

/** Runs one statement of a transaction on its connection. */
export type TransactionQuery = <R>(text: string, values: unknown[]) => Promise<R[]>

/**
 * Runs `fn` in a transaction on one pooled connection, settling by `until`: COMMIT when `fn`
 * resolves with `commit: true`, ROLLBACK otherwise or when it throws. After a timeout the
 * connection is discarded, which ends the transaction on the server without committing it.
 */
export function inTransaction<T>(
  runner: StatementRunner,
  what: string,
  subject: string,
  until: number,
  fn: (query: TransactionQuery) => Promise<{ value: T; commit: boolean }>,
): Promise<T> {
  // The transaction is one "statement" to the runner: BEGIN, then fn's statements, then the end.
  return runner
    .run<T>(what, subject, 'BEGIN', [], until, async (client) => {
      const query: TransactionQuery = async <R>(text: string, values: unknown[]) =>
        (await client.query({ text, values, types: TEXT_TYPES })).rows as R[]
      let outcome: { value: T; commit: boolean }
      try {
        outcome = await fn(query)
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined)
        throw err
      }
      await client.query(outcome.commit ? 'COMMIT' : 'ROLLBACK')
      return [outcome.value]
    })
    .then((rows) => rows[0]!)
}

function isDatabaseError(err: unknown): boolean {
  // node-postgres's DatabaseError: the server answered with an error; the connection is fine.
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as { severity?: unknown }).severity === 'string'
  )
}

function failure(err: unknown, what: string, subject: string, table: string): StoreError {
  if (err instanceof StoreError) return err
  const message = errorMessage(err)
  if (isCode(err, '22P02') && message.includes(DEADLINE_MARKER)) {
    return new StoreError(
      `PostgresStore: ${what} ${subject} reached its deadline before it could be written; it was ` +
        `not saved`,
      { cause: err, code: 'ETIMEDOUT' },
    )
  }
  if (isCode(err, '42P01') || isCode(err, '42703')) {
    return new StoreError(
      `PostgresStore: ${what} ${subject} failed: ${message}. ${table} is missing or is not a ` +
        `concord-session table; let the store create it (createTable: true) or create it as ` +
        `docs/postgres.md shows`,
      { cause: err, code: 'ESCHEMA' },
    )
  }
  return toStoreError(err, (why) => `PostgresStore: ${what} ${subject} failed: ${why}`, 'EPOSTGRES')
}
