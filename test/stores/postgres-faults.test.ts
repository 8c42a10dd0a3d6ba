/**
 * session() over PostgresStore while PostgreSQL hangs or is unreachable, played with a TCP proxy
 * (the machine's server is never stopped): every request is answered within its bound, what each
 * was told is what is stored, and a logout stays a logout.
 */
import { describeFaults } from '../fault-suite'
import { faultyPostgres } from '../support/faulty-stores'
import { dropSchema, testSchema } from '../support/postgres'

const TIMEOUT = 1000
const schema = testSchema('mw_faults')
afterAll(() => dropSchema(schema))

describeFaults('PostgresStore', () => faultyPostgres(schema, TIMEOUT), { storeTimeout: TIMEOUT })
