/**
 * `node --import tsx bench/layered-reads.ts [pool|hot]`: what a read served by LayeredStore's hot
 * layer costs against RedisStore alone, in process (no HTTP), over a redis-server of its own and
 * the tests' PostgreSQL, in a schema it creates and drops.
 *
 * - **own**: LayeredStore.load over a hot store that answers at once, against that hot store
 *   alone: the layer's own CPU and bytes per load.
 * - **redis** and **layered**: the session middleware reading the cart (with Express's prototype
 *   swap), 256 sessions (`pool`) or one (`hot`); each measured in a process of its own, so the
 *   other's code does not make the shared paths polymorphic.
 *
 * Prints one JSON line per measure: medians of 7 rounds.
 */
import { execFileSync } from 'node:child_process'
import { GCProfiler } from 'node:v8'
import Redis from 'ioredis'
import pg from 'pg'
import session, { MemoryStore } from '../entries/index.js'
import { LayeredStore } from '../entries/layered.js'
import { PostgresStore } from '../entries/postgres.js'
import { RedisStore } from '../entries/redis.js'
import type { SessionRecord, Store } from '../lib/store.js'
import { META_KEY } from '../stores/layered-entry.js'
import { runMain } from './cleanup.js'
import { asExpressDoes, FakeRes, type Mw } from './fake-http.js'
import { startBenchPostgres } from './postgres.js'
import { startBenchRedis } from './redis.js'
import { MAX_AGE_MS, SECRET } from './systems.js'

const [workload = 'pool', measure] = process.argv.slice(2)
if (
  !['pool', 'hot'].includes(workload) ||
  !['own', 'redis', 'layered', undefined].includes(measure)
)
  throw new TypeError(
    'usage: node --import tsx bench/layered-reads.ts [pool|hot] [own|redis|layered]',
  )

/** CPU µs and bytes per call of `op`, the median of 7 rounds of `n` after a warm-up. */
async function perCall(
  op: () => Promise<unknown>,
  n: number,
): Promise<{ cpuUs: number; bytes: number }> {
  for (let i = 0; i < n; i++) await op()
  const rounds: Array<[number, number]> = []
  for (let r = 0; r < 7; r++) {
    const profiler = new GCProfiler()
    profiler.start()
    const heap0 = process.memoryUsage().heapUsed
    const cpu0 = process.cpuUsage()
    for (let i = 0; i < n; i++) await op()
    const cpu = process.cpuUsage(cpu0)
    let freed = 0
    for (const gc of profiler.stop()?.statistics ?? [])
      freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize
    rounds.push([(cpu.user + cpu.system) / n, (process.memoryUsage().heapUsed - heap0 + freed) / n])
  }
  const median = (i: 0 | 1) => rounds.map((r) => r[i]).sort((a, b) => a - b)[3]!
  return { cpuUs: +median(0).toFixed(3), bytes: Math.round(median(1)) }
}

/** The layer's own work: a hot store whose load answers at once with a fresh record. */
async function own(): Promise<void> {
  const now = Date.now()
  const meta = JSON.stringify({ v: 3, k: now + MAX_AGE_MS, c: now, h: now + 3_600_000 })
  const hot = new MemoryStore()
  hot.load = async (): Promise<SessionRecord> => ({
    data: { user: '"user-1"', cart: '{"items":{"sku-0":1,"sku-1":1}}', [META_KEY]: meta },
    cookie: {},
    createdAt: now,
    expiresAt: now + MAX_AGE_MS,
    idleTimeout: MAX_AGE_MS,
    version: 7,
  })
  const layered = new LayeredStore({ hot, cold: new MemoryStore(), singleProcess: true })
  const options = { touchAt: now }
  const direct = await perCall(() => hot.load('id'), 100_000)
  const through = await perCall(() => layered.load('id', options), 100_000)
  console.log(
    JSON.stringify({
      measure: 'own',
      cpuUs: +(through.cpuUs - direct.cpuUs).toFixed(3),
      bytes: through.bytes - direct.bytes,
    }),
  )
}

/** The cart read through the middleware, in this process, over one store. */
async function reads(name: 'redis' | 'layered'): Promise<void> {
  const redis = await startBenchRedis()
  const postgres = await startBenchPostgres()
  const client = new Redis(redis.url)
  const pool = new pg.Pool({ connectionString: postgres.url })
  try {
    const hot = new RedisStore({ client, prefix: `bench:${name}:` })
    let store: Store = hot
    if (name === 'layered') {
      const cold = new PostgresStore({ pool, schema: postgres.schema, table: 'layered_reads' })
      await cold.count() // creates the table before the first request
      store = new LayeredStore({ hot, cold })
    }
    const mw = session(store, { secret: SECRET, cookie: { maxAge: MAX_AGE_MS } }) as Mw
    const cookies: string[] = []
    for (let i = 0; i < (workload === 'hot' ? 1 : 256); i++) {
      const res = await send(mw, '/login')
      const header = res.headers['set-cookie'] as string | string[]
      cookies.push(String(Array.isArray(header) ? header[0] : header).split(';')[0]!)
    }
    let next = 0
    const batch = () =>
      Promise.all(
        Array.from({ length: 16 }, () => send(mw, '/cart', cookies[next++ % cookies.length])),
      )
    const { cpuUs, bytes } = await perCall(batch, 600)
    console.log(
      JSON.stringify({
        measure: name,
        workload,
        cpuUs: +(cpuUs / 16).toFixed(2),
        bytes: Math.round(bytes / 16),
      }),
    )
  } finally {
    client.disconnect()
    await pool.end()
    await postgres.stop()
    await redis.stop()
  }
}

/** One request through the middleware to the cart handler, as bench/inprocess.ts sends it. */
function send(mw: Mw, path: string, cookie?: string): Promise<FakeRes> {
  return new Promise((resolve, reject) => {
    const req = { headers: cookie ? { cookie } : {}, url: path, method: 'GET', socket: {} }
    const res = new FakeRes(resolve)
    asExpressDoes(req, res)
    mw(req, res, (err) => {
      if (err) return reject(err)
      const s = (req as { session?: Record<string, unknown> }).session!
      if (path === '/login') s.cart = { items: { 'sku-0': 1, 'sku-1': 1 } }
      else if (s.cart === undefined) return reject(new Error('bench: the session was not loaded'))
      res.writeHead(200)
      res.end(JSON.stringify(s.cart))
    })
  })
}

runMain(async () => {
  if (measure === 'own') return own()
  if (measure === 'redis' || measure === 'layered') return reads(measure)
  // Each measure in a process of its own.
  for (const m of ['own', 'redis', 'layered'])
    process.stdout.write(
      execFileSync(process.execPath, [...process.execArgv, __filename, workload, m], {
        encoding: 'utf8',
      }),
    )
})
