/**
 * Touch throttling: one session read again and again, with and without `touchAfter`, on one
 * store; counts the writes that reach the store and the CPU per read.
 */
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import pg from 'pg'
import { deriveIdHashKey, hashSessionId } from '../entries/index.js'
import dropIn from '../entries/express-session.js'
import { FileStore } from '../entries/file.js'
import { PostgresStore } from '../entries/postgres.js'
import { processCpuMicros } from './children.js'
import { drive, type Mw } from './fake-http.js'
import { median } from './load.js'
import { connectPgSimple, type ExpressSession } from './peers.js'
import { MAX_AGE_MS, SECRET } from './systems.js'
import { concord, required, readCart, signIn } from './lifecycle-app.js'
import type { TouchJob, TouchResult, TouchVariant } from './lifecycle-jobs.js'

/** A concord store keeps a session under the keyed hash of its id (see docs/at-rest.md). */
const storedId = (id: string) => hashSessionId(id, deriveIdHashKey(SECRET))

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
    storedExpiry = async (id) => (await store.load(storedId(id)))!.expiresAt
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
      storedExpiry = async (id) => (await store.load(storedId(id)))!.expiresAt
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

export async function touch(job: TouchJob): Promise<TouchResult> {
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
