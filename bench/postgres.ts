/**
 * PostgreSQL for the bench: the machine's server (as the tests use it), in a schema of the run's
 * own that the bench creates, and drops at the end, even after a failed run. Nothing else in the
 * database is touched.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { PG_URL } from '../test/support/postgres.js'
import { onCleanup } from './cleanup.js'

export interface BenchPostgres {
  url: string
  schema: string
  stop(): Promise<void>
}

const OWN_SCHEMA = /^concord_bench_[0-9a-f]{8}$/

export async function startBenchPostgres(url = PG_URL): Promise<BenchPostgres> {
  const schema = `concord_bench_${randomBytes(4).toString('hex')}`
  const admin = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 10_000 })
  admin.on('error', () => {}) // an idle connection dropped: the next query says so
  try {
    await admin.query(`CREATE SCHEMA "${schema}"`)
  } catch (err) {
    await admin.end()
    throw new Error(
      `bench: cannot create a schema on ${redact(url)} (${(err as Error).message}); the PostgreSQL systems need the server the tests use`,
      { cause: err },
    )
  }
  const stop = onCleanup(async () => {
    try {
      // Only the schema this run created: the name is checked, never taken from elsewhere.
      if (OWN_SCHEMA.test(schema)) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    } finally {
      await admin.end()
    }
  })
  return { url, schema, stop }
}

function redact(url: string): string {
  const parsed = new URL(url)
  if (parsed.password) parsed.password = '***'
  return parsed.toString()
}
