/**
 * session() over a LayeredStore (Redis hot over PostgreSQL cold) while one layer hangs or is
 * unreachable. With cold failing, requests fail with a 503 within their bound; with hot failing,
 * they carry on with cold alone. Either way what each request was told is what is stored, and a
 * logout stays a logout.
 */
import { LayeredStore } from '../../entries/layered'
import { describeFaults, type FaultyStore } from '../fault-suite'
import { faultyPostgres, faultyRedis } from '../support/faulty-stores'
import { dropSchema, testSchema } from '../support/postgres'
import { TestClients } from '../support/redis-clients'
import { testPrefix } from '../support/redis-server'

const TIMEOUT = 1000
const clients = new TestClients()
const schemas: string[] = []
afterAll(async () => {
  await clients.closeAll()
  for (const schema of schemas) await dropSchema(schema)
})

/** Both layers over breakable links; the fault goes to the one `broken` names. */
async function layered(broken: 'hot' | 'cold'): Promise<FaultyStore> {
  const schema = testSchema(`layered_${broken}_faults`)
  schemas.push(schema)
  const hot = await faultyRedis(clients, 'ioredis', testPrefix('layered-faults'), TIMEOUT)
  const cold = await faultyPostgres(schema, TIMEOUT)
  const faulty = broken === 'hot' ? hot : cold
  return {
    ...faulty,
    store: new LayeredStore({ hot: hot.store, cold: cold.store }),
    async close() {
      await hot.close()
      await cold.close()
    },
  }
}

describeFaults('LayeredStore, its cold layer failing', () => layered('cold'), {
  storeTimeout: TIMEOUT,
})
describeFaults('LayeredStore, its hot layer failing', () => layered('hot'), {
  storeTimeout: TIMEOUT,
  servesDuringFault: true,
})
