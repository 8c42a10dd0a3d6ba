/**
 * Two app processes on one PostgreSQL table: both create the table at the same moment,
 * concurrent adds to one cart split between them all survive, and a logout in one process
 * racing a slow write in the other leaves the session destroyed. Again on a second table with
 * ids renewed every 40 requests in each process.
 */
import { describeTwoProcesses } from '../two-process-suite'
import { PG_URL, dropSchema, testSchema } from '../support/postgres'

const schema = testSchema('procs')
afterAll(() => dropSchema(schema))

describeTwoProcesses('PostgresStore', { PG_URL, PG_SCHEMA: schema, PG_TABLE: 'sessions' })
describeTwoProcesses('PostgresStore, renewing ids every 40 requests', {
  PG_URL,
  PG_SCHEMA: schema,
  PG_TABLE: 'renewing',
  RENEW_AFTER: '40',
})
