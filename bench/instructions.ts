/**
 * `node --import tsx bench/instructions.ts [--requests=500] [--warmup=1500] [--systems=...]`: the
 * CPU cost per request as machine instructions, counted by valgrind's callgrind in the server
 * process over a fixed number of requests. Unlike CPU time, an instruction count does not move
 * with the machine's load (other processes, cache and core contention, clock speed), so it
 * settles whether a difference in the HTTP bench's CPU figures is the code or the machine.
 *
 * Each server child runs under `valgrind --tool=callgrind --instr-atstart=no`: uninstrumented
 * (faster) through start-up and session creation; then a warm-up of `warmup` requests of every
 * type, so the JIT has compiled the code of all of them before any is counted (a type warmed up
 * alone and measured first would be charged for compiling what the later ones share); then, for
 * each request type, `callgrind_control --zero`, exactly `requests` requests, and a dump. The
 * defaults finish in minutes per system on a busy machine. Under valgrind the server is far slower
 * than the load generator, so it always finds requests waiting: the counts are those of a
 * saturated server, the same for every system. Needs valgrind (callgrind_control) on the PATH.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { buildTree } from './build.js'
import { startServer } from './children.js'
import { removeOnExit, runMain } from './cleanup.js'
import { createSessionPool } from './http.js'
import { KINDS, runLoad, WORKLOADS, type Kind, type Workload } from './load.js'
import { startBenchPostgres } from './postgres.js'
import { startBenchRedis } from './redis.js'
import { needsPostgres, needsRedis, systemById, type SystemId } from './systems.js'

const DEFAULT_SYSTEMS = 'bare,limit,concord-memory,es-memory'

export interface InstructionCounts {
  requests: number
  /** Instructions per request, by system, then `${kind} ${workload}`. */
  perRequest: Partial<Record<SystemId, Record<string, number>>>
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      requests: { type: 'string' },
      warmup: { type: 'string' },
      systems: { type: 'string' },
    },
  })
  const requests = Number(args.requests ?? 500)
  const warmup = Number(args.warmup ?? 1500)
  if (!Number.isInteger(requests) || requests < 1 || !Number.isInteger(warmup) || warmup < 0)
    throw new Error('bench instructions: --requests must be a positive integer, --warmup >= 0')
  const systems = (args.systems ?? DEFAULT_SYSTEMS).split(',').map((id) => systemById(id).id)
  const tmp = join(__dirname, '.tmp')
  const scratch = join(tmp, `instructions-${process.pid}`)
  mkdirSync(scratch, { recursive: true })
  removeOnExit(scratch)
  const buildDir = buildTree(join(scratch, 'build'))
  const redis = systems.some((id) => needsRedis(systemById(id)))
    ? await startBenchRedis()
    : undefined
  const postgres = systems.some((id) => needsPostgres(systemById(id)))
    ? await startBenchPostgres()
    : undefined

  const counts: InstructionCounts = { requests, perRequest: {} }
  for (const id of systems) {
    const outDir = join(scratch, id)
    mkdirSync(outDir)
    const server = await startServer(
      buildDir,
      {
        system: id,
        redisUrl: redis?.url,
        dir: systemById(id).needs === 'dir' ? join(outDir, 'store') : undefined,
        pgUrl: postgres?.url,
        pgSchema: postgres?.schema,
      },
      [],
      [
        'valgrind',
        '--tool=callgrind',
        '--instr-atstart=no',
        '--dump-instr=no',
        `--callgrind-out-file=${join(outDir, 'callgrind.out')}`,
      ],
    )
    const pool = await createSessionPool(server.url, 256)
    // On for good: switching it off and on again loses counts. Each measure is zeroed instead.
    callgrind('--instr=on', server.pid)
    const mine: Record<string, number> = {}
    const load = (kind: Kind, workload: Workload, amount: number) =>
      runLoad({
        url: server.url,
        kind,
        pool: workload === 'hot' ? pool.slice(0, 1) : pool,
        connections: workload === 'hot' ? 16 : 32,
        seconds: 0,
        amount,
      })
    for (const workload of WORKLOADS) for (const kind of KINDS) await load(kind, workload, warmup)
    for (const workload of WORKLOADS) {
      for (const kind of KINDS) {
        callgrind('--zero', server.pid)
        const result = await load(kind, workload, requests)
        callgrind('--dump', server.pid)
        if (result.failures > 0)
          throw new Error(`bench: ${id} ${kind} ${workload}: ${result.failures} requests failed`)
        mine[`${kind} ${workload}`] = lastDumpTotal(outDir) / result.requests
        log(`${id} ${kind} ${workload}: ${Math.round(mine[`${kind} ${workload}`]!)} instructions`)
      }
    }
    counts.perRequest[id] = mine
    await server.stop()
  }
  writeFileSync(join(tmp, 'instructions.json'), JSON.stringify(counts, null, 2))
  console.log(renderInstructions(counts))
}

function callgrind(...args: Array<string | number>): void {
  execFileSync('callgrind_control', args.map(String), { stdio: 'ignore' })
}

/** The `totals:` of the newest dump (callgrind.out.1, .2, …) in `dir`. */
function lastDumpTotal(dir: string): number {
  const dumps = readdirSync(dir)
    .map((name) => /^callgrind\.out\.(\d+)$/.exec(name))
    .filter((m) => m !== null)
    .sort((a, b) => Number(b[1]) - Number(a[1]))
  if (dumps.length === 0) throw new Error(`bench: no callgrind dump in ${dir}`)
  const text = readFileSync(join(dir, dumps[0]![0]), 'utf8')
  const total = /^(?:totals|summary): (\d+)/m.exec(text)
  if (!total) throw new Error(`bench: no totals in ${dumps[0]![0]}`)
  return Number(total[1])
}

/** A markdown table: thousands of instructions per request, and over bare in brackets. */
export function renderInstructions(counts: InstructionCounts): string {
  const columns = WORKLOADS.flatMap((w) => KINDS.map((k) => `${k} ${w}` as const))
  const bare = counts.perRequest.bare
  const lines = [
    `| Thousand instructions per request (over bare) | ${columns.map((c) => c.replace(' ', ', ')).join(' | ')} |`,
    `|---|${columns.map(() => '--:').join('|')}|`,
  ]
  for (const [id, row] of Object.entries(counts.perRequest)) {
    const cells = columns.map((c) => {
      const value = row[c]
      if (value === undefined) return 'n/a'
      const over = bare && id !== 'bare' ? ` (+${Math.round((value - bare[c]!) / 1000)})` : ''
      return `${Math.round(value / 1000)}${over}`
    })
    lines.push(`| ${systemById(id).label} | ${cells.join(' | ')} |`)
  }
  return lines.join('\n')
}

function log(line: string): void {
  process.stderr.write(`bench instructions: ${line}\n`)
}

runMain(main)
