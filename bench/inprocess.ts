/**
 * `node --import tsx bench/inprocess.ts <system> <read|write> <pool|hot>`: the session middleware
 * alone, driven in process with plain request and response objects (no sockets, no Express), so
 * the CPU time and bytes allocated per request are the middleware's and a cart handler's only.
 * Steadier than the HTTP bench on a busy machine: nothing else shares the measured process.
 * `system` is `bare`, `limit`, `concord` (MemoryStore) or `es-memory` (express-session's MemoryStore). Prints one JSON line: medians of 5
 * rounds of 40 000 requests, after 30 000 to warm up, 16 in flight.
 *
 * A fifth argument `traced` subscribes a metrics-style listener to concord's diagnostics channels
 * first, to measure what tracing costs against the same run without one. `encrypted` runs
 * concord with `encrypt` on (AES-256-GCM per stored value), and `raw-ids` with `hashIds: false`,
 * to measure what encryption and hashed ids at rest cost against the default (`plain`).
 */
import { randomBytes } from 'node:crypto'
import diagnostics_channel from 'node:diagnostics_channel'
import { GCProfiler } from 'node:v8'
import session, { MemoryStore } from '../entries/index.js'
import { asExpressDoes, FakeRes } from './fake-http.js'
import { SKUS } from './http.js'
import { limitSession } from './limit.js'
import { expressSession } from './peers.js'
import { MAX_AGE_MS, SECRET } from './systems.js'

const [root = 'concord', kind = 'read', workload = 'pool', tracing = 'plain'] = process.argv.slice(
  2,
) as ['bare' | 'limit' | 'concord' | 'es-memory', 'read' | 'write', 'pool' | 'hot', string]
if (
  !['bare', 'limit', 'concord', 'es-memory'].includes(root) ||
  !['read', 'write'].includes(kind) ||
  !['pool', 'hot'].includes(workload) ||
  !['plain', 'traced', 'encrypted', 'raw-ids'].includes(tracing)
) {
  console.error(
    'usage: node --import tsx bench/inprocess.ts <bare|limit|concord|es-memory> <read|write> <pool|hot> [plain|traced|encrypted|raw-ids]',
  )
  process.exit(2)
}
type Mw = (req: any, res: any, next: (err?: unknown) => void) => void

/** Just what the middleware and the handler call on a response. */
let counter = 0

/** The cart app's handlers, as in bench/servers/cart-app.ts. */
function handle(req: any, res: FakeRes, path: string) {
  const s = req.session ?? {}
  if (path === '/login') {
    s.user = `user-${counter}`
    s.cart = { items: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`sku-${i}`, 1])) }
  } else if (path.startsWith('/cart/add/')) {
    const cart = (s.cart ??= { items: {} })
    const item = path.slice(10)
    cart.items[item] = (cart.items[item] ?? 0) + 1
  }
  const body = JSON.stringify({ user: s.user ?? null, items: s.cart?.items ?? {} })
  res.writeHead(200)
  res.end(body)
}

function send(mw: Mw | undefined, path: string, cookie?: string): Promise<FakeRes> {
  return new Promise((resolve, reject) => {
    const req = { headers: cookie ? { cookie } : {}, url: path, method: 'POST', socket: {} }
    const res = new FakeRes(resolve)
    asExpressDoes(req, res)
    if (!mw) return handle(req, res, path)
    mw(req, res, (err) => (err ? reject(err) : handle(req, res, path)))
  })
}

/** What a metrics exporter does per operation: count it and sum its duration. */
function subscribeMetrics(): void {
  const totals: Record<string, { count: number; ms: number; errors: number }> = {}
  for (const name of ['load', 'save', 'destroy', 'touch']) {
    const total = (totals[name] = { count: 0, ms: 0, errors: 0 })
    diagnostics_channel.tracingChannel(`concord-session:${name}`).subscribe({
      start() {},
      end() {},
      asyncStart() {},
      asyncEnd(ctx: any) {
        total.count++
        total.ms += ctx.duration ?? 0
      },
      error() {
        total.errors++
      },
    })
  }
}

async function main() {
  if (tracing === 'traced') subscribeMetrics()
  let mw: Mw | undefined
  if (root === 'limit') {
    mw = limitSession({ secret: SECRET, maxAge: MAX_AGE_MS })
  } else if (root === 'es-memory') {
    mw = expressSession({
      secret: SECRET,
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: MAX_AGE_MS, sameSite: 'lax' },
      store: new expressSession.MemoryStore(),
    })
  } else if (root === 'concord') {
    mw = session(new MemoryStore(), {
      secret: SECRET,
      cookie: { maxAge: MAX_AGE_MS },
      ...(tracing === 'encrypted' && { encrypt: { keys: [randomBytes(32)] } }),
      ...(tracing === 'raw-ids' && { hashIds: false }),
    }) as Mw
  }
  const poolSize = workload === 'hot' ? 1 : 256
  const pool: string[] = []
  for (let i = 0; i < poolSize; i++) {
    counter = i
    const res = await send(mw, '/login')
    const sc = res.headers['set-cookie']
    pool.push(sc ? String(Array.isArray(sc) ? sc[0] : sc).split(';')[0]! : '')
  }
  if (root !== 'bare' && pool.some((cookie) => !cookie))
    throw new Error(`bench inprocess: ${root} issued no session cookie at login`)
  let n = 0
  const op = () => {
    const i = n++
    const cookie = pool[i % pool.length]
    const path =
      kind === 'read' ? '/cart' : `/cart/add/${SKUS[Math.floor(i / pool.length) % SKUS.length]}`
    return send(mw, path, cookie)
  }
  const run = async (count: number) => {
    for (let done = 0; done < count; done += 16) await Promise.all(Array.from({ length: 16 }, op))
  }
  await run(30_000)
  const results: number[][] = []
  for (let r = 0; r < 5; r++) {
    const N = 40_000
    const profiler = new GCProfiler()
    profiler.start()
    const heap0 = process.memoryUsage().heapUsed
    const cpu0 = process.cpuUsage()
    await run(N)
    const cpu = process.cpuUsage(cpu0)
    const heap1 = process.memoryUsage().heapUsed
    let freed = 0
    for (const gc of profiler.stop()?.statistics ?? [])
      freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize
    results.push([(cpu.user + cpu.system) / N, (heap1 - heap0 + freed) / N])
  }
  const med = (i: number) => results.map((r) => r[i]!).sort((a, b) => a - b)[2]!
  console.log(
    JSON.stringify({
      root,
      kind,
      workload,
      ...(tracing !== 'plain' && { mode: tracing }),
      cpuUs: +med(0).toFixed(2),
      bytes: Math.round(med(1)),
    }),
  )
}
void main()
