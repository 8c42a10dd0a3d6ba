/**
 * Two app processes on one PostgreSQL table: both create the table at the same moment,
 * concurrent adds to one cart split between them all survive, and a logout in one process
 * racing a slow write in the other leaves the session destroyed.
 */
import { describeTwoProcesses } from '../two-process-suite'
import { PG_URL, dropSchema, testSchema } from '../support/postgres'

const schema = testSchema('procs')
afterAll(() => dropSchema(schema))

describeTwoProcesses('PostgresStore', { PG_URL, PG_SCHEMA: schema, PG_TABLE: 'sessions' })
