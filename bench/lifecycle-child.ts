/**
 * One lifecycle measurement per process, run by bench/lifecycle.ts from the compiled tree:
 * `node bench/lifecycle-child.js '<job as JSON>'`. Prints its result as one JSON line.
 *
 * - `touch`: one session read again and again, with and without `touchAfter`, on one store;
 *   counts the writes that reach the store and the CPU per read.
 * - `tracing`: CPU per request with no diagnostics_channel subscriber, and with one.
 * - `events`: CPU per request with no `onEvent` listener, and with one.
 *
 * Each compares its two setups in the same process, round by round in ABBA order, so drift in
 * the machine's load hits both alike.
 */
import diagnostics_channel from 'node:diagnostics_channel'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import pg from 'pg'
import session, { MemoryStore, type SessionEvent, type Store } from '../entries/index.js'
import dropIn from '../entries/express-session.js'
import { FileStore } from '../entries/file.js'
import { PostgresStore } from '../entries/postgres.js'
import { processCpuMicros } from './children.js'
import { drive, sessionCookie, type Handler, type Mw } from './fake-http.js'
import { median } from './load.js'
import { connectPgSimple, type ExpressSession } from './peers.js'
import { MAX_AGE_MS, SECRET } from './systems.js'

export type TouchStore = 'file' | 'postgres' | 'pg-simple'

export interface TouchJob {
  type: 'touch'
  store: TouchStore
  /** Reads measured per setup, split over `rounds`. */
  reads: number
  rounds: number
  warmup: number
  /** Time between two reads on the session's clock. */
  spacingMs: number
  touchAfterMs: number
  /** For the FileStore: a directory of its own. */
  dir?: string
  pgUrl?: string
  pgSchema?: string
}

export interface ObserverJob {
  type: 'tracing' | 'events'
  /** Operations per round per setup. */
  requests: number
  rounds: number
  warmup: number
}

export type LifecycleJob = TouchJob | ObserverJob

export interface TouchVariant {
  /** `null`: no touchAfter, every read touches. */
  touchAfterMs: number | null
  reads: number
  /** Writes that reached the store over `reads`. */
  writes: number
  /** The same writes by what counted them: file system calls by name, or `n_tup_upd`. */
  writesBy: Record<string, number>
  /** CPU of this Node process per read, µs (user + sys, every thread): median over rounds. */
  nodeCpuUs: number
  /** CPU of the PostgreSQL backend serving the store per read, µs, over all reads (its clock
   * ticks are 10 ms, too coarse for a round); PostgreSQL only. */
  backendCpuUs?: number
  /**
   * Elapsed time per read, µs, one read at a time (median over rounds): includes waiting for
   * the disk or the database.
   */
  wallUs: number
  /** How far the stored expiry was behind the exact one after the last read, ms. */
  lagMs: number
}

export interface TouchResult {
  store: TouchStore
  variants: TouchVariant[]
}

export interface ObserverRow {
  workload: 'read' | 'write' | 'sign-in + sign-out'
  /** Median over rounds of CPU per operation without the observer, µs. */
  plainUs: number
  /** Likewise, with it. */
  observedUs: number
  /** Median over rounds of (with − without), each pair measured back to back. */
  diffUs: number
  /** Trace completions or events the observer received per operation: proof it was called. */
  seenPerOp: number
  opsPerRound: number
  rounds: number
}

const POOL_SESSIONS = 256
const IN_FLIGHT = 16
const SKUS = ['sku-a', 'sku-b', 'sku-c', 'sku-d', 'sku-e', 'sku-f', 'sku-g', 'sku-h']

interface CartSession {
  id: string
  user?: string
  cart?: { items: Record<string, number> }
  destroy(): Promise<void>
}

const login: Handler = (req, res) => {
  const s = req.session as CartSession
  s.user = 'user-1'
  s.cart = { items: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`sku-${i}`, 1])) }
  res.end(JSON.stringify({ id: s.id }))
}

const readCart: Handler = (req, res) => {
  const s = req.session as CartSession
  // A session lost mid-run would make reads cheap for the wrong reason: stop instead.
  if (s.user === undefined) throw new Error('bench: the session was lost during the reads')
  res.end(JSON.stringify({ user: s.user, items: s.cart?.items ?? {} }))
}

const addItem: Handler = (req, res) => {
  const s = req.session as CartSession
  const cart = (s.cart ??= { items: {} })
  const item = String(req.url).slice('/cart/add/'.length)
  cart.items[item] = (cart.items[item] ?? 0) + 1
  res.end(JSON.stringify({ count: Object.keys(cart.items).length }))
}

const logout: Handler = async (req, res) => {
  await (req.session as CartSession).destroy()
  res.end('{}')
}

async function signIn(mw: Mw): Promise<{ cookie: string; id: string }> {
  const res = await drive(mw, login, '/login', undefined, 'POST')
  return { cookie: sessionCookie(res), id: (JSON.parse(String(res.body)) as { id: string }).id }
}

// ---------------------------------------------------------------------------------------------
// Touch throttling

/**
 * The session's clock. Every setup has a timeline of its own (only one runs at a time), so one
 * setup's reads never look like idle time to the other's session. Nothing waits for it.
 */
let simulatedNow = Date.now()

interface TouchSetup {
  touchAfterMs: number | null
  mw: Mw
  cookie: string
  id: string
  clock: number
  /** Writes seen so far, by what counted them. */
  writesSoFar(): Promise<Record<string, number>>
  /** The PostgreSQL backend serving this setup's store, and a way to ask it again. */
  backendPid?: number
  currentBackendPid?: () => Promise<number>
  storedExpiry(id: string): Promise<number>
  close(): Promise<void>
  totals: { reads: number; writesBy: Record<string, number>; backendUs: number }
  /** Per round, per read. */
  cpuUs: number[]
  wallUs: number[]
}

/** File system calls that change something, as the FileStore makes them. */
const FS_WRITES = [
  'futimes',
  'lutimes',
  'utimes',
  'write',
  'writev',
  'writeFile',
  'rename',
  'unlink',
  'symlink',
  'link',
  'fsync',
  'fdatasync',
  'ftruncate',
  'truncate',
  'mkdir',
  'rmdir',
  'rm',
]

/** Counts calls to node:fs's writing functions (callback and promise API) from now on. */
function countFsWrites(): Record<string, number> {
  const counts: Record<string, number> = {}
  const modules: Array<[Record<string, unknown>, string]> = [
    [require('node:fs') as Record<string, unknown>, ''],
    [require('node:fs/promises') as Record<string, unknown>, 'promises.'],
  ]
  for (const [module, prefix] of modules) {
    for (const name of FS_WRITES) {
      const original = module[name]
      if (typeof original !== 'function') continue
      module[name] = function (this: unknown, ...args: unknown[]) {
        counts[prefix + name] = (counts[prefix + name] ?? 0) + 1
        return (original as (...a: unknown[]) => unknown).apply(this, args)
      }
    }
  }
  return counts
}

/**
 * One connection per store (reads are one at a time, so a second would never be used), kept
 * open, so its backend's CPU and table statistics are this setup's alone.
 */
function onePool(url: string): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: 1,
    idleTimeoutMillis: 0,
    connectionTimeoutMillis: 60_000,
  })
  pool.on('error', (err: Error) => console.error('bench lifecycle:', err.message))
  return pool
}

/** `n_tup_upd` of the table: rows PostgreSQL updated, counted by PostgreSQL. */
function tableUpdates(pool: pg.Pool, admin: pg.Client, schema: string, table: string) {
  return async (): Promise<Record<string, number>> => {
    // The store's backend publishes its pending counts when it goes idle after this call
    // (PostgreSQL 15+), so they are all visible before the count is read.
    await pool.query('SELECT pg_stat_force_next_flush()')
    await admin.query('SELECT pg_stat_clear_snapshot()')
    const { rows } = await admin.query<{ n: string }>(
      'SELECT n_tup_upd::text AS n FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = $2',
      [schema, table],
    )
    if (!rows[0]) throw new Error(`bench: no statistics for table ${schema}.${table}`)
    return { n_tup_upd: Number(rows[0].n) }
  }
}

async function backendPid(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
  return rows[0]!.pid
}

async function touchSetup(
  job: TouchJob,
  touchAfterMs: number | null,
  admin: pg.Client | undefined,
  fsCounts: Record<string, number>,
): Promise<TouchSetup> {
  const name = touchAfterMs === null ? 'every' : 'after'
  const touchAfter = touchAfterMs ?? undefined
  let mw: Mw
  let writesSoFar: () => Promise<Record<string, number>>
  let storedExpiry: (id: string) => Promise<number>
  let close: () => Promise<void>
  let pid: number | undefined
  let currentBackendPid: (() => Promise<number>) | undefined
  if (job.store === 'file') {
    const store = new FileStore({ dir: join(required(job.dir, 'dir'), name) })
    mw = concord(store, touchAfter)
    writesSoFar = async () => ({ ...fsCounts })
    storedExpiry = async (id) => (await store.load(id))!.expiresAt
    close = () => store.close()
  } else {
    const pool = onePool(required(job.pgUrl, 'pgUrl'))
    const schema = required(job.pgSchema, 'pgSchema')
    if (job.store === 'postgres') {
      const table = `lifecycle_touch_${name}`
      const store = new PostgresStore({ pool, schema, table, pruneInterval: false })
      await store.count() // creates the table
      mw = concord(store, touchAfter)
      writesSoFar = tableUpdates(pool, admin!, schema, table)
      storedExpiry = async (id) => (await store.load(id))!.expiresAt
      close = async () => {
        await store.close()
        await pool.end()
      }
    } else {
      // connect-pg-simple, through the express-session drop-in (which adapts it).
      const table = `lifecycle_touch_cps_${name}`
      // connect-pg-simple's table.sql, with index names of the table's own: the ones it creates
      // itself (session_pkey) are per schema, so a second table in the schema would clash.
      await pool.query(
        `CREATE TABLE "${schema}"."${table}" (sid varchar NOT NULL COLLATE "default",
          sess json NOT NULL, expire timestamp(6) NOT NULL, CONSTRAINT "${table}_pkey"
          PRIMARY KEY (sid) NOT DEFERRABLE INITIALLY IMMEDIATE);
        CREATE INDEX "${table}_expire" ON "${schema}"."${table}" (expire)`,
      )
      const PgStore = connectPgSimple(dropIn as unknown as ExpressSession)
      const legacy = new PgStore({
        pool,
        schemaName: schema,
        tableName: table,
        createTableIfMissing: false,
        pruneSessionInterval: false,
      })
      mw = dropIn({
        store: legacy as never,
        secret: SECRET,
        resave: false,
        saveUninitialized: false,
        cookie: { maxAge: MAX_AGE_MS, sameSite: 'lax' },
        touchAfter,
      }) as unknown as Mw
      writesSoFar = tableUpdates(pool, admin!, schema, table)
      // The expire column is what ends a connect-pg-simple session (its touch writes only it).
      storedExpiry = async (id) => {
        const { rows } = await admin!.query<{ ms: string }>(
          `SELECT (extract(epoch FROM expire::timestamptz) * 1000)::text AS ms FROM "${schema}"."${table}"
           WHERE sid = $1`,
          [id],
        )
        if (!rows[0]) throw new Error('bench: the connect-pg-simple session is gone')
        return Number(rows[0].ms)
      }
      close = async () => {
        legacy.close()
        await pool.end()
      }
    }
    currentBackendPid = () => backendPid(pool)
    pid = await currentBackendPid()
  }
  const { cookie, id } = await signIn(mw)
  return {
    touchAfterMs,
    mw,
    cookie,
    id,
    clock: simulatedNow,
    writesSoFar,
    backendPid: pid,
    currentBackendPid,
    storedExpiry,
    close,
    totals: { reads: 0, writesBy: {}, backendUs: 0 },
    cpuUs: [],
    wallUs: [],
  }
}

async function reads(setup: TouchSetup, n: number, spacingMs: number): Promise<void> {
  simulatedNow = setup.clock
  for (let i = 0; i < n; i++) {
    simulatedNow += spacingMs
    await drive(setup.mw, readCart, '/cart', setup.cookie)
  }
  setup.clock = simulatedNow
}

async function measuredReads(setup: TouchSetup, n: number, spacingMs: number): Promise<void> {
  const writes0 = await setup.writesSoFar()
  const backend0 = setup.backendPid === undefined ? 0 : processCpuMicros(setup.backendPid)
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  await reads(setup, n, spacingMs)
  const cpu = process.cpuUsage(cpu0)
  const wall = performance.now() - t0
  const backend = setup.backendPid === undefined ? 0 : processCpuMicros(setup.backendPid)
  const writes1 = await setup.writesSoFar()
  const t = setup.totals
  t.reads += n
  t.backendUs += backend - backend0
  for (const [name, count] of Object.entries(writes1)) {
    const delta = count - (writes0[name] ?? 0)
    if (delta > 0) t.writesBy[name] = (t.writesBy[name] ?? 0) + delta
  }
  setup.cpuUs.push((cpu.user + cpu.system) / n)
  setup.wallUs.push((wall * 1000) / n)
}

async function touch(job: TouchJob): Promise<TouchResult> {
  // Only a process that measures touches moves the clock.
  Date.now = () => simulatedNow
  const fsCounts = job.store === 'file' ? countFsWrites() : {}
  let admin: pg.Client | undefined
  if (job.store !== 'file') {
    admin = new pg.Client({ connectionString: job.pgUrl, connectionTimeoutMillis: 60_000 })
    await admin.connect()
  }
  const setups: TouchSetup[] = []
  try {
    for (const touchAfterMs of [null, job.touchAfterMs])
      setups.push(await touchSetup(job, touchAfterMs, admin, fsCounts))
    for (const setup of setups) await reads(setup, job.warmup, job.spacingMs)
    const perRound = Math.ceil(job.reads / job.rounds)
    for (let round = 0; round < job.rounds; round++) {
      for (const setup of round % 2 === 0 ? setups : [...setups].reverse())
        await measuredReads(setup, perRound, job.spacingMs)
    }
    const variants: TouchVariant[] = []
    for (const setup of setups) {
      simulatedNow = setup.clock
      const exact = setup.clock + MAX_AGE_MS
      const { reads: n, writesBy, backendUs } = setup.totals
      if (setup.currentBackendPid && (await setup.currentBackendPid()) !== setup.backendPid)
        throw new Error('bench: the store reconnected to PostgreSQL during the reads')
      variants.push({
        touchAfterMs: setup.touchAfterMs,
        reads: n,
        writes: Object.values(writesBy).reduce((sum, count) => sum + count, 0),
        writesBy,
        nodeCpuUs: median(setup.cpuUs),
        ...(setup.backendPid !== undefined && { backendCpuUs: backendUs / n }),
        wallUs: median(setup.wallUs),
        lagMs: exact - (await setup.storedExpiry(setup.id)),
      })
    }
    return { store: job.store, variants }
  } finally {
    for (const setup of setups) await setup.close()
    await admin?.end()
  }
}

// ---------------------------------------------------------------------------------------------
// Tracing and events

interface Setup {
  mw: Mw
  enter(): void
  leave(): void
}

/** Runs `count` operations, IN_FLIGHT at a time. */
async function run(op: (i: number) => Promise<unknown>, count: number, start: number) {
  for (let done = 0; done < count; done += IN_FLIGHT)
    await Promise.all(Array.from({ length: IN_FLIGHT }, (_, k) => op(start + done + k)))
}

/**
 * CPU per operation of `op` without and with the observer, in rounds of `job.requests`
 * operations, ABBA order. `seen` counts what the observer received.
 */
async function paired(
  job: ObserverJob,
  workload: ObserverRow['workload'],
  plain: Setup,
  observed: Setup,
  op: (mw: Mw, i: number) => Promise<unknown>,
  seen: () => number,
): Promise<ObserverRow> {
  let counter = 0
  const measure = async (setup: Setup, count: number) => {
    setup.enter()
    const cpu0 = process.cpuUsage()
    await run((i) => op(setup.mw, i), count, counter)
    const cpu = process.cpuUsage(cpu0)
    setup.leave()
    counter += count
    return (cpu.user + cpu.system) / count
  }
  await measure(plain, job.warmup)
  await measure(observed, job.warmup)
  const without: number[] = []
  const withIt: number[] = []
  let seenMeasured = 0
  for (let round = 0; round < job.rounds; round++) {
    const order = round % 2 === 0 ? [plain, observed] : [observed, plain]
    for (const setup of order) {
      const seen0 = seen()
      const us = await measure(setup, job.requests)
      if (setup === plain) without.push(us)
      else {
        withIt.push(us)
        seenMeasured += seen() - seen0
      }
    }
  }
  return {
    workload,
    plainUs: median(without),
    observedUs: median(withIt),
    diffUs: median(withIt.map((us, i) => us - without[i]!)),
    seenPerOp: seenMeasured / (job.requests * job.rounds),
    opsPerRound: job.requests,
    rounds: job.rounds,
  }
}

async function cookiePool(mw: Mw): Promise<string[]> {
  const cookies: string[] = []
  for (let i = 0; i < POOL_SESSIONS; i++) cookies.push((await signIn(mw)).cookie)
  return cookies
}

const read = (cookies: readonly string[]) => (mw: Mw, i: number) =>
  drive(mw, readCart, '/cart', cookies[i % cookies.length])

const write = (cookies: readonly string[]) => (mw: Mw, i: number) =>
  drive(
    mw,
    addItem,
    `/cart/add/${SKUS[Math.floor(i / cookies.length) % SKUS.length]}`,
    cookies[i % cookies.length],
    'POST',
  )

/** A metrics exporter's subscriber: counts each operation and sums its duration. */
async function tracing(job: ObserverJob): Promise<ObserverRow[]> {
  const store = new MemoryStore()
  const mw = concord(store, undefined)
  const cookies = await cookiePool(mw)
  const totals = { completed: 0, ms: 0, errors: 0 }
  const subscriber = {
    start() {},
    end() {},
    asyncStart() {},
    asyncEnd(ctx: { duration?: number }) {
      totals.completed++
      totals.ms += ctx.duration ?? 0
    },
    error() {
      totals.errors++
    },
  }
  const channels = ['load', 'save', 'destroy', 'touch'].map((name) =>
    diagnostics_channel.tracingChannel<unknown, { duration?: number }>(`concord-session:${name}`),
  )
  const plain: Setup = { mw, enter() {}, leave() {} }
  const traced: Setup = {
    mw,
    enter: () => channels.forEach((c) => c.subscribe(subscriber)),
    leave: () => channels.forEach((c) => c.unsubscribe(subscriber)),
  }
  const seen = () => totals.completed
  const rows = [
    await paired(job, 'read', plain, traced, read(cookies), seen),
    await paired(job, 'write', plain, traced, write(cookies), seen),
  ]
  await store.close()
  if (totals.errors > 0) throw new Error(`bench: ${totals.errors} traced store calls failed`)
  return rows
}

/** An audit log's listener: one JSON line per event (kept in memory, written nowhere). */
async function events(job: ObserverJob): Promise<ObserverRow[]> {
  const store = new MemoryStore()
  let received = 0
  let lastLine = ''
  const onEvent = (event: SessionEvent) => {
    received++
    lastLine = JSON.stringify(event)
  }
  const plain: Setup = { mw: concord(store, undefined), enter() {}, leave() {} }
  const listening: Setup = {
    mw: session(store, { secret: SECRET, cookie: { maxAge: MAX_AGE_MS }, onEvent }) as Mw,
    enter() {},
    leave() {},
  }
  const cookies = await cookiePool(plain.mw)
  const signInOut = async (mw: Mw) => {
    const { cookie } = await signIn(mw)
    await drive(mw, logout, '/logout', cookie, 'POST')
  }
  const seen = () => received
  const rows = [
    await paired(job, 'read', plain, listening, read(cookies), seen),
    await paired(job, 'sign-in + sign-out', plain, listening, signInOut, seen),
  ]
  await store.close()
  if (received > 0 && !lastLine.includes('"type"'))
    throw new Error('bench: the listener got events without a type')
  return rows
}

// ---------------------------------------------------------------------------------------------

function concord(store: Store, touchAfter: number | undefined): Mw {
  return session(store, { secret: SECRET, cookie: { maxAge: MAX_AGE_MS }, touchAfter }) as Mw
}

function required(value: string | undefined, name: string): string {
  if (!value) throw new Error(`bench lifecycle: ${name} is required for this job`)
  return value
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? 'null') as LifecycleJob | null
  if (!job || !['touch', 'tracing', 'events'].includes(job.type))
    throw new Error(`bench lifecycle: unknown job ${process.argv[2]}`)
  const result =
    job.type === 'touch'
      ? await touch(job)
      : job.type === 'tracing'
        ? await tracing(job)
        : await events(job)
  process.stdout.write(JSON.stringify(result) + '\n')
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: Error) => {
      console.error(err.stack ?? err.message)
      process.exit(1)
    },
  )
}
