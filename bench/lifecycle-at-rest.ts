/**
 * What protection at rest costs: CPU per request with ids stored raw (`hashIds: false`), hashed
 * (the default), and hashed with every value encrypted (`encrypt`), on a MemoryStore.
 */
import { randomBytes } from 'node:crypto'
import session, { MemoryStore, sessionInfo, type SessionOptions } from '../entries/index.js'
import { drive, sessionCookie, type Handler, type Mw } from './fake-http.js'
import { median } from './load.js'
import { MAX_AGE_MS, SECRET } from './systems.js'
import {
  IN_FLIGHT,
  POOL_SESSIONS,
  SKUS,
  addItem,
  readCart,
  type CartSession,
} from './lifecycle-app.js'
import type { AtRestJob, AtRestMode, AtRestRow } from './lifecycle-jobs.js'

interface Setup {
  mode: AtRestMode
  store: MemoryStore
  mw: Mw
  /** The pool's sessions: the cookie, the id it carries, and the id the store keys it by. */
  pool: { cookie: string; id: string; storedId: string }[]
}

const OPTIONS: Record<AtRestMode, Partial<SessionOptions>> = {
  raw: { hashIds: false },
  hashed: {},
  encrypted: { encrypt: { keys: [randomBytes(32)] } },
}

/** The cart app's sign-in, also saying which id the store keys the new session by. */
const loginShowingStoredId: Handler = (req, res) => {
  const s = req.session as CartSession
  s.user = 'user-1'
  s.cart = { items: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`sku-${i}`, 1])) }
  res.end(JSON.stringify({ id: s.id, storedId: sessionInfo(req.session).storedId }))
}

async function setUp(mode: AtRestMode): Promise<Setup> {
  const store = new MemoryStore()
  const options = { secret: SECRET, cookie: { maxAge: MAX_AGE_MS }, ...OPTIONS[mode] }
  const mw = session(store, options) as Mw
  const pool: Setup['pool'] = []
  for (let i = 0; i < POOL_SESSIONS; i++) {
    const res = await drive(mw, loginShowingStoredId, '/login', undefined, 'POST')
    const ids = JSON.parse(String(res.body)) as { id: string; storedId: string }
    pool.push({ cookie: sessionCookie(res), ...ids })
  }
  return { mode, store, mw, pool }
}

/**
 * The share of the pool's sessions stored the way the mode says: under the raw id; under a
 * hash, with nothing under the raw id; under a hash, with no value readable in the clear.
 */
async function storedAsSaid(setup: Setup): Promise<number> {
  let matching = 0
  for (const { id, storedId } of setup.pool) {
    const underRaw = await setup.store.load(id)
    const underStored = await setup.store.load(storedId)
    if (setup.mode === 'raw') {
      if (storedId === id && underRaw?.data['user'] === '"user-1"') matching++
      continue
    }
    if (storedId === id || underRaw !== null || underStored === null) continue
    const values = Object.values(underStored.data)
    const clear = values.some((text) => text === '"user-1"' || text.includes('sku-'))
    if (setup.mode === 'hashed' ? clear : !clear && values.every((t) => t.startsWith('"cs1.')))
      matching++
  }
  return matching / setup.pool.length
}

type Op = (setup: Setup, i: number) => Promise<unknown>

const read: Op = (setup, i) =>
  drive(setup.mw, readCart, '/cart', setup.pool[i % POOL_SESSIONS]!.cookie)

const write: Op = (setup, i) =>
  drive(
    setup.mw,
    addItem,
    `/cart/add/${SKUS[Math.floor(i / POOL_SESSIONS) % SKUS.length]}`,
    setup.pool[i % POOL_SESSIONS]!.cookie,
    'POST',
  )

/**
 * CPU per operation of each setup, in rounds of `job.requests` operations, the setups in
 * forward then backward order round by round (ABC CBA), so drift in the load hits all alike.
 */
async function measure(
  job: AtRestJob,
  workload: AtRestRow['workload'],
  setups: Setup[],
  op: Op,
): Promise<AtRestRow[]> {
  let counter = 0
  const once = async (setup: Setup, count: number) => {
    const cpu0 = process.cpuUsage()
    for (let done = 0; done < count; done += IN_FLIGHT)
      await Promise.all(Array.from({ length: IN_FLIGHT }, (_, k) => op(setup, counter + done + k)))
    const cpu = process.cpuUsage(cpu0)
    counter += count
    return (cpu.user + cpu.system) / count
  }
  for (const setup of setups) await once(setup, job.warmup)
  const us = setups.map((): number[] => [])
  for (let round = 0; round < job.rounds; round++) {
    const order = round % 2 === 0 ? [0, 1, 2] : [2, 1, 0]
    for (const k of order) us[k]!.push(await once(setups[k]!, job.requests))
  }
  const rows: AtRestRow[] = []
  for (const [k, setup] of setups.entries())
    rows.push({
      workload,
      mode: setup.mode,
      us: median(us[k]!),
      // Against the setup before it: hashing against raw ids, encryption against hashing alone.
      diffUs: k === 0 ? null : median(us[k]!.map((v, r) => v - us[k - 1]![r]!)),
      storedAsSaid: await storedAsSaid(setup),
      opsPerRound: job.requests,
      rounds: job.rounds,
    })
  return rows
}

/** Reads and writes of a 256-session pool under each mode, each mode with a store of its own. */
export async function atRest(job: AtRestJob): Promise<AtRestRow[]> {
  const setups = [await setUp('raw'), await setUp('hashed'), await setUp('encrypted')]
  const rows = [
    ...(await measure(job, 'read', setups, read)),
    ...(await measure(job, 'write', setups, write)),
  ]
  for (const setup of setups) await setup.store.close()
  return rows
}
