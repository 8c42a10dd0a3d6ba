/**
 * What the session lifecycle features cost and save, measured in child processes run from the
 * compiled tree (bench/lifecycle-child.ts does the measuring):
 *
 * - touch throttling (`touchAfter`): store writes and CPU per read, with and without it, on the
 *   FileStore, the PostgresStore, and connect-pg-simple through the express-session drop-in;
 * - tracing on diagnostics_channel: CPU per request with no subscriber and with one;
 * - lifecycle events (`onEvent`): CPU per request with no listener and with one;
 * - protection at rest: CPU per request with raw ids, hashed ids, and hashed ids with encryption.
 *
 * `npm run bench` runs it after the load runs. On its own, printing only its tables:
 *
 *   node --import tsx bench/lifecycle.ts [--quick]
 */
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { buildTree } from './build.js'
import { killOnExit, removeOnExit, runMain } from './cleanup.js'
import type {
  AtRestRow,
  LifecycleJob,
  ObserverRow,
  TouchResult,
  TouchStore,
} from './lifecycle-child.js'
import { renderLifecycle } from './lifecycle-report.js'
import { describeMachine, finishMachine } from './machine.js'
import { startBenchPostgres } from './postgres.js'

export interface LifecycleConfig {
  /** Reads measured per store and setup. */
  touchReads: number
  touchRounds: number
  touchWarmup: number
  /** Time between two reads of the session, on its clock. */
  spacingMs: number
  touchAfterMs: number
  /**
   * Requests (or sign-in + sign-out pairs) per round and setup, for tracing, events and
   * protection at rest.
   */
  observerRequests: number
  observerRounds: number
  observerWarmup: number
}

export const LIFECYCLE_FULL: LifecycleConfig = {
  touchReads: 1000,
  touchRounds: 10,
  touchWarmup: 100,
  spacingMs: 1000,
  touchAfterMs: 60_000,
  observerRequests: 40_000,
  observerRounds: 7,
  observerWarmup: 30_000,
}

/** Same code, fewer and shorter rounds: enough to see that it works, not to quote. */
export const LIFECYCLE_QUICK: LifecycleConfig = {
  ...LIFECYCLE_FULL,
  touchReads: 200,
  touchRounds: 4,
  touchWarmup: 30,
  observerRequests: 8_000,
  observerRounds: 3,
  observerWarmup: 8_000,
}

export interface LifecycleResults {
  config: LifecycleConfig
  touch: TouchResult[]
  tracing: ObserverRow[]
  events: ObserverRow[]
  /** Absent from results saved before it was measured. */
  atRest?: AtRestRow[]
  /** Stores not measured, and why. */
  skipped: string[]
}

/** PostgreSQL for the touch measurement: the run's own schema. */
export interface LifecyclePostgres {
  url: string
  schema: string
}

/**
 * Runs every lifecycle measurement, one child at a time (they would compete for the cores).
 * Without `postgres`, the PostgreSQL stores are skipped and the report says so.
 *
 * @example
 * ```ts
 * results.lifecycle = await measureLifecycle(buildDir, scratch, LIFECYCLE_QUICK, postgres, log)
 * ```
 */
export async function measureLifecycle(
  buildDir: string,
  scratch: string,
  config: LifecycleConfig,
  postgres: LifecyclePostgres | undefined,
  log: (line: string) => void = () => {},
): Promise<LifecycleResults> {
  const results: LifecycleResults = {
    config,
    touch: [],
    tracing: [],
    events: [],
    atRest: [],
    skipped: [],
  }
  const stores: TouchStore[] = ['file', 'postgres', 'pg-simple']
  for (const store of stores) {
    if (store !== 'file' && !postgres) {
      results.skipped.push(`${store}: no PostgreSQL in this run`)
      continue
    }
    const touch = await runChild<TouchResult>(buildDir, {
      type: 'touch',
      store,
      reads: config.touchReads,
      rounds: config.touchRounds,
      warmup: config.touchWarmup,
      spacingMs: config.spacingMs,
      touchAfterMs: config.touchAfterMs,
      dir: store === 'file' ? join(scratch, 'lifecycle-file') : undefined,
      pgUrl: postgres?.url,
      pgSchema: postgres?.schema,
    })
    results.touch.push(touch)
    for (const v of touch.variants)
      log(
        `  touch ${store} touchAfter ${v.touchAfterMs ?? 'none'}: ${v.writes} writes in ${v.reads} reads, ${v.nodeCpuUs.toFixed(1)} µs CPU per read`,
      )
  }
  for (const type of ['tracing', 'events'] as const) {
    const rows = await runChild<ObserverRow[]>(buildDir, {
      type,
      requests: config.observerRequests,
      rounds: config.observerRounds,
      warmup: config.observerWarmup,
    })
    results[type] = rows
    for (const r of rows)
      log(
        `  ${type} ${r.workload}: ${r.plainUs.toFixed(1)} µs without, ${r.observedUs.toFixed(1)} µs with, ${r.seenPerOp.toFixed(2)} seen per operation`,
      )
  }
  const atRest = await runChild<AtRestRow[]>(buildDir, {
    type: 'at-rest',
    requests: config.observerRequests,
    rounds: config.observerRounds,
    warmup: config.observerWarmup,
  })
  results.atRest = atRest
  for (const r of atRest)
    log(
      `  at rest ${r.workload} ${r.mode}: ${r.us.toFixed(1)} µs, ${(r.storedAsSaid * 100).toFixed(0)}% stored as said`,
    )
  return results
}

/**
 * Runs one job in a child from the compiled tree (bench/build.ts); resolves to the JSON line it
 * prints, rejects with the child's stderr if it fails.
 *
 * @example
 * ```ts
 * const rows = await runChild<ObserverRow[]>(buildDir, { type: 'events', requests: 64, rounds: 1, warmup: 16 })
 * ```
 */
export function runChild<T>(buildDir: string, job: LifecycleJob): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(buildDir, 'bench', 'lifecycle-child.js'), JSON.stringify(job)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    killOnExit(child)
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.once('error', reject)
    child.once('close', (code, signal) => {
      const line = stdout.trim().split('\n').pop() ?? ''
      if (code !== 0 || !line)
        return reject(
          new Error(
            `bench: the lifecycle ${describe(job)} measurement failed (${signal ?? `exit code ${code}`}):\n${stderr}`,
          ),
        )
      try {
        resolve(JSON.parse(line) as T)
      } catch {
        reject(new Error(`bench: the lifecycle ${describe(job)} measurement printed ${line}`))
      }
    })
  })
}

function describe(job: LifecycleJob): string {
  return job.type === 'touch' ? `touch (${job.store})` : job.type
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean' } } })
  const machine = describeMachine()
  const tmp = join(__dirname, '.tmp')
  mkdirSync(tmp, { recursive: true })
  const scratch = mkdtempSync(join(tmp, 'lifecycle-'))
  removeOnExit(scratch)
  const buildDir = buildTree(join(scratch, 'build'))
  const postgres = await startBenchPostgres()
  const started = Date.now()
  const results = await measureLifecycle(
    buildDir,
    scratch,
    values.quick ? LIFECYCLE_QUICK : LIFECYCLE_FULL,
    postgres,
    (line) => process.stderr.write(`${line}\n`),
  )
  finishMachine(machine)
  console.log(
    [
      `${values.quick ? 'Quick run. ' : ''}Run ${machine.date.slice(0, 16).replace('T', ' ')} UTC of commit ${machine.commit}, on ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}; ` +
        `1-minute load average ${machine.loadBefore[0]} before, ${machine.loadAfter[0]} after; ${Math.round((Date.now() - started) / 1000)} s.`,
      '',
      ...renderLifecycle(results),
    ].join('\n'),
  )
}

if (require.main === module) runMain(main)
