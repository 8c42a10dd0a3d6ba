/**
 * `npm run bench [-- --quick] [-- --systems=a,b] [-- --delay=ms]`: load every system in turn,
 * run the remote-Redis, correctness and memory measurements, and write the report.
 * `--node-args="--no-memory-reducer"` passes V8 or Node flags to every server, to test what a
 * runtime setting does to the comparison; such a run writes to bench/.tmp/ too.
 *
 * Only a full run over every system writes bench/results.md and bench/results.svg (what the
 * README quotes); a quick or filtered run writes to bench/.tmp/ instead.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { buildTree } from './build.js'
import { startServer, type ServerChild } from './children.js'
import { removeOnExit, runMain } from './cleanup.js'
import { createSessionPool, send } from './http.js'
import { LIFECYCLE_FULL, LIFECYCLE_QUICK, measureLifecycle } from './lifecycle.js'
import { KINDS, runLoad, WORKLOADS, type Kind, type LoadResult, type Workload } from './load.js'
import { describeMachine, finishMachine, untilQuiet } from './machine.js'
import { MEMORY_STORES, measureMemory } from './memory.js'
import { probeLostUpdates, probeResurrection } from './probes.js'
import { startDelayProxy, type DelayProxy } from './proxy.js'
import { startBenchPostgres } from './postgres.js'
import { commandsPerRequest, startBenchRedis, type BenchRedis } from './redis.js'
import { renderMarkdown, renderSvg } from './report.js'
import {
  pairedDifference,
  pairedRatio,
  roundDifferences,
  summarize,
  type RemoteSystem,
  type Results,
  type RunConfig,
} from './results.js'
import { needsPostgres, needsRedis, SYSTEMS, systemById, type SystemId } from './systems.js'

const FULL: RunConfig = {
  quick: false,
  rounds: 9,
  seconds: 3,
  warmupSeconds: 2,
  connections: 32,
  hotConnections: 16,
  poolSize: 256,
  proxyDelayMs: 1,
  remoteRounds: 3,
  remoteSeconds: 3,
  roundTripRequests: 200,
  lostUpdateRequests: 200,
  resurrectionTrials: 5,
  resurrectionSlowMs: 300,
  memorySessions: 100_000,
}

/** Under two minutes: enough to see a regression, not to quote. */
const QUICK: RunConfig = {
  ...FULL,
  quick: true,
  rounds: 2,
  seconds: 1,
  warmupSeconds: 0.5,
  remoteRounds: 1,
  remoteSeconds: 1.5,
  roundTripRequests: 50,
  resurrectionTrials: 2,
  memorySessions: 20_000,
}

const REMOTE_SYSTEMS: readonly RemoteSystem[] = ['concord-redis', 'es-connect-redis']

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      systems: { type: 'string' },
      delay: { type: 'string' },
      rounds: { type: 'string' },
      seconds: { type: 'string' },
      'node-args': { type: 'string' },
    },
  })
  const config: RunConfig = { ...(args.quick ? QUICK : FULL) }
  if (args.delay !== undefined) config.proxyDelayMs = Number(args.delay)
  // Fewer or shorter rounds when the machine is too busy for a full run in reasonable time;
  // the report states what was run.
  if (args.rounds !== undefined) config.rounds = positive('rounds', args.rounds)
  if (args.seconds !== undefined) config.seconds = positive('seconds', args.seconds)
  const systems = args.systems
    ? args.systems.split(',').map((id) => systemById(id.trim()).id)
    : SYSTEMS.map((s) => s.id)
  const withRemote = REMOTE_SYSTEMS.every((id) => systems.includes(id))
  const started = Date.now()
  const machine = describeMachine()
  log(`bench: ${config.quick ? 'quick' : 'full'} run of ${systems.join(', ')}`)

  const tmp = join(__dirname, '.tmp')
  mkdirSync(tmp, { recursive: true })
  const scratch = mkdtempSync(join(tmp, 'run-'))
  removeOnExit(scratch)
  const buildDir = buildTree(join(scratch, 'build'))

  const redis = systems.some((id) => needsRedis(systemById(id)))
    ? await startBenchRedis()
    : undefined
  const postgres = systems.some((id) => needsPostgres(systemById(id)))
    ? await startBenchPostgres()
    : undefined
  const proxy =
    redis && withRemote ? await startDelayProxy(redis.port, config.proxyDelayMs) : undefined
  const nodeArgs = args['node-args']?.split(' ').filter(Boolean) ?? []
  const startSystem = (id: SystemId, redisUrl = redis?.url) =>
    startServer(
      buildDir,
      {
        system: id,
        redisUrl,
        dir: systemById(id).needs === 'dir' ? join(scratch, id) : undefined,
        pgUrl: postgres?.url,
        pgSchema: postgres?.schema,
      },
      nodeArgs,
    )

  // Every server starts at once, the remote-mode ones (Redis through the proxy) too.
  const servers = new Map<SystemId, ServerChild>()
  const remoteServers = new Map<RemoteSystem, ServerChild>()
  await Promise.all([
    ...systems.map(async (id) => servers.set(id, await startSystem(id))),
    ...(proxy ? REMOTE_SYSTEMS : []).map(async (id) =>
      remoteServers.set(id, await startSystem(id, `redis://127.0.0.1:${proxy!.port}`)),
    ),
  ])
  const pools = new Map<SystemId, string[]>()
  await Promise.all(
    systems.map(async (id) =>
      pools.set(id, await createSessionPool(servers.get(id)!.url, config.poolSize)),
    ),
  )
  log(`bench: ${servers.size + remoteServers.size} servers up, ${config.poolSize} sessions each`)

  const results: Results = {
    config,
    machine,
    systems,
    load: {},
    hot: {},
    remote: {},
    lostUpdates: {},
    resurrection: {},
    memory: [],
    durationSeconds: 0,
  }

  // Throughput and CPU: warm every system up, then rounds in a fresh order each time.
  const pairs = systems.flatMap((id) =>
    WORKLOADS.flatMap((workload) => KINDS.map((kind) => ({ id, kind, workload }))),
  )
  const runs = await rounds(
    pairs,
    config.rounds,
    config.warmupSeconds,
    (id, kind, workload, seconds) =>
      measureServer(servers.get(id)!, () =>
        runLoad({
          url: servers.get(id)!.url,
          kind,
          // The hot workload: every request on the pool's first session.
          pool: workload === 'hot' ? pools.get(id)!.slice(0, 1) : pools.get(id)!,
          connections: workload === 'hot' ? config.hotConnections : config.connections,
          seconds,
        }),
      ),
    config.seconds,
  )
  for (const { id, kind, workload } of pairs) {
    const mine = runs.get(`${id} ${kind} ${workload}`)!
    const summary = summarize(mine)
    const bare = runs.get(`bare ${kind} ${workload}`)
    const peer = systemById(id).peer && runs.get(`${systemById(id).peer} ${kind} ${workload}`)
    if (bare && id !== 'bare') {
      summary.vsBare = pairedRatio(mine, bare)
      summary.cpuOverBareUs = pairedDifference(mine, bare, 'cpuUs')
      summary.cpuOverBareRounds = roundDifferences(mine, bare, 'cpuUs')
      summary.allocOverBare = pairedDifference(mine, bare, 'allocBytes')
    }
    if (peer) summary.vsPeer = pairedRatio(mine, peer)
    ;((workload === 'hot' ? results.hot : results.load)[id] ??= {})[kind] = summary
  }

  if (redis && proxy) {
    log('bench: remote Redis mode')
    results.remote = await remoteMode(config, redis, proxy, remoteServers)
  }

  log('bench: correctness probes')
  for (const id of systems) {
    if (id === 'bare') continue
    const url = servers.get(id)!.url
    results.lostUpdates[id] = {
      existingCart: await probeLostUpdates(url, config.lostUpdateRequests, true),
      newCart: await probeLostUpdates(url, config.lostUpdateRequests, false),
    }
    results.resurrection[id] = await probeResurrection(
      url,
      config.resurrectionTrials,
      config.resurrectionSlowMs,
    )
    log(
      `  probes ${id}: ${JSON.stringify(results.lostUpdates[id])} ${JSON.stringify(results.resurrection[id])}`,
    )
  }
  await Promise.all(
    [...servers.values(), ...remoteServers.values()].map(async (server) => {
      const t = Date.now()
      await server.stop()
      if (Date.now() - t > 1000) log(`  ${server.config.system} took ${Date.now() - t} ms to stop`)
    }),
  )

  log('bench: memory')
  // heapUsed is per process, so the stores can fill side by side.
  const memoryStores = MEMORY_STORES.filter((store) => systems.includes(store))
  results.memory = await Promise.all(
    memoryStores.map((store) => measureMemory(store, config.memorySessions, buildDir)),
  )
  for (const m of results.memory)
    log(`  memory ${m.store}: ${Math.round(m.heapDeltaBytes / m.sessions)} bytes/session`)

  // A run over every system measures the lifecycle features too; a --systems run is for
  // comparing the systems it names.
  if (args.systems === undefined) {
    log('bench: lifecycle features')
    results.lifecycle = await measureLifecycle(
      buildDir,
      scratch,
      config.quick ? LIFECYCLE_QUICK : LIFECYCLE_FULL,
      postgres,
      log,
    )
  }

  finishMachine(machine)
  results.durationSeconds = (Date.now() - started) / 1000
  const official =
    !config.quick &&
    args.systems === undefined &&
    args.delay === undefined &&
    args['node-args'] === undefined
  const outDir = official ? __dirname : tmp
  const base = official ? 'results' : config.quick ? 'results-quick' : 'results-partial'
  const markdown = renderMarkdown(results, `${base}.svg`)
  writeFileSync(join(outDir, `${base}.md`), markdown)
  writeFileSync(join(outDir, `${base}.svg`), renderSvg(results))
  writeFileSync(
    join(tmp, `${base}.json`),
    JSON.stringify({ results, runs: Object.fromEntries(runs) }, null, 2),
  )
  console.log(markdown)
  log(`bench: wrote ${join(outDir, base)}.md and .svg in ${Math.round(results.durationSeconds)} s`)
}

function positive(name: string, value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1)
    throw new TypeError(`bench: --${name} must be a whole number of at least 1, got ${value}`)
  return n
}

type Measure = (
  id: SystemId,
  kind: Kind,
  workload: Workload,
  seconds: number,
) => Promise<LoadResult>

/** One load run, with the server's CPU (from /proc) and allocations over it, per request answered. */
async function measureServer(
  server: ServerChild,
  load: () => Promise<LoadResult>,
): Promise<LoadResult> {
  await server.allocStart()
  const cpuBefore = server.cpuMicros()
  const result = await load()
  const cpu = server.cpuMicros() - cpuBefore
  const { bytes, gc } = await server.allocStop()
  const answered = Math.max(1, result.requests + result.failures)
  return { ...result, cpuUs: cpu / answered, allocBytes: bytes / answered, gc }
}

/**
 * A warm-up of each pair, then `count` rounds. A round runs the groups of systems compared with
 * each other (systems.ts) in a new order, and the pairs inside each group in a new order too.
 * Runs are keyed `${id} ${kind}`, one per round, in round order.
 */
async function rounds(
  pairs: ReadonlyArray<{ id: SystemId; kind: Kind; workload: Workload }>,
  count: number,
  warmupSeconds: number,
  measure: Measure,
  seconds: number,
): Promise<Map<string, LoadResult[]>> {
  const runs = new Map<string, LoadResult[]>(
    pairs.map(({ id, kind, workload }) => [`${id} ${kind} ${workload}`, []]),
  )
  for (const { id, kind, workload } of pairs) await measure(id, kind, workload, warmupSeconds)
  for (let round = 1; round <= count; round++) {
    const groups = shuffled([...new Set(pairs.map((p) => systemById(p.id).group))], round)
    const order = groups.flatMap((group, g) =>
      shuffled(
        pairs.filter((p) => systemById(p.id).group === group),
        round * 31 + g,
      ),
    )
    for (const { id, kind, workload } of order) {
      if (!(await untilQuiet()))
        log(`  the machine stayed busy: ${id} ${kind} ${workload} starts anyway`)
      const result = await measure(id, kind, workload, seconds)
      runs.get(`${id} ${kind} ${workload}`)!.push(result)
      const cpu =
        result.cpuUs === undefined
          ? ''
          : `, ${Math.round(result.cpuUs)} µs CPU and ${Math.round(result.allocBytes ?? 0)} B per request`
      // GC counts, to tell a load that met more full collections from one whose code cost more.
      const gc = result.gc
        ? `; GC: ${result.gc.young} young, ${result.gc.full} full, ${result.gc.pauseMs.toFixed(0)} ms paused`
        : ''
      log(
        `  round ${round}/${count} ${id} ${kind} ${workload}: ${Math.round(result.rps)} req/s, p50 ${result.p50.toFixed(2)} ms${cpu}${gc}${result.failures ? `, ${result.failures} FAILED` : ''}`,
      )
    }
  }
  return runs
}

/**
 * Both Redis systems again, each behind the delay proxy, one request at a time: the latency a
 * user sees when Redis is across a network, and the round trips behind it.
 */
async function remoteMode(
  config: RunConfig,
  redis: BenchRedis,
  proxy: DelayProxy,
  servers: ReadonlyMap<RemoteSystem, ServerChild>,
): Promise<Results['remote']> {
  const pools = new Map<SystemId, string[]>()
  for (const [id, server] of servers) pools.set(id, await createSessionPool(server.url, 20))
  const pairs = REMOTE_SYSTEMS.flatMap((id) =>
    KINDS.map((kind) => ({ id, kind, workload: 'pool' as const })),
  )
  const runs = await rounds(
    pairs,
    config.remoteRounds,
    config.warmupSeconds,
    (id, kind, _workload, seconds) =>
      runLoad({
        url: servers.get(id as RemoteSystem)!.url,
        kind,
        pool: pools.get(id)!,
        connections: 1,
        seconds,
      }),
    config.remoteSeconds,
  )

  const remote: Results['remote'] = {}
  for (const id of REMOTE_SYSTEMS) {
    for (const kind of KINDS) {
      const counted = await countRoundTrips(
        servers.get(id)!.url,
        kind,
        pools.get(id)!,
        config.roundTripRequests,
        proxy,
        redis,
      )
      ;(remote[id] ??= {})[kind] = { ...summarize(runs.get(`${id} ${kind} pool`)!), ...counted }
      log(
        `  remote ${id} ${kind}: ${counted.roundTrips} round trips, ${JSON.stringify(counted.commands)}`,
      )
    }
  }
  return remote
}

/** Sequential requests, so every round trip the proxy sees belongs to them. */
async function countRoundTrips(
  url: string,
  kind: Kind,
  pool: readonly string[],
  n: number,
  proxy: DelayProxy,
  redis: BenchRedis,
) {
  // The last autocannon request may still be in the server when autocannon stops: let it land.
  await new Promise((resolve) => setTimeout(resolve, 500))
  const trips = proxy.roundTrips()
  const commands = await redis.commandCounts()
  for (let i = 0; i < n; i++) {
    const reply = await send(
      url,
      kind === 'read' ? 'GET' : 'POST',
      kind === 'read' ? '/cart' : `/cart/add/rt-${i % 10}`,
      pool[i % pool.length],
    )
    if (reply.status !== 200)
      throw new Error(`bench: round-trip count got ${reply.status} from ${url}`)
  }
  return {
    roundTrips: Math.round(((proxy.roundTrips() - trips) / n) * 100) / 100,
    commands: commandsPerRequest(commands, await redis.commandCounts(), n),
  }
}

/** A deterministic shuffle (mulberry32), different for each seed. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  let state = seed * 0x9e3779b9
  const random = () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

const t0 = Date.now()
function log(line: string): void {
  process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}\n`)
}

runMain(main)
