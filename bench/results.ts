/**
 * What a bench run produces: the shapes shared by the orchestrator, the target check and the
 * report, and the medians over rounds.
 */
import type { LifecycleResults } from './lifecycle.js'
import type { Kind, LoadResult } from './load.js'
import { median } from './load.js'
import type { MemoryResult } from './memory.js'
import type { LostUpdates, Resurrections } from './probes.js'
import type { SystemId } from './systems.js'

export interface RunConfig {
  quick: boolean
  rounds: number
  seconds: number
  warmupSeconds: number
  connections: number
  /** Connections for the hot workload (all on one session). */
  hotConnections: number
  poolSize: number
  proxyDelayMs: number
  remoteRounds: number
  remoteSeconds: number
  roundTripRequests: number
  lostUpdateRequests: number
  resurrectionTrials: number
  resurrectionSlowMs: number
  memorySessions: number
}

export interface Summary {
  rps: number
  /** Slowest and fastest round, to show how much the machine moved. */
  rpsMin: number
  rpsMax: number
  p50: number
  p99: number
  failures: number
  rounds: number
  /** Median over rounds of this round's req/s over bare Express's in the same round. */
  vsBare?: number
  /** Likewise, over the express-session setup this concord system replaces. */
  vsPeer?: number
  /** Median over rounds of the server's CPU per request, µs. */
  cpuUs?: number
  /** Median over rounds of (this CPU per request − bare Express's in the same round), µs. */
  cpuOverBareUs?: number
  /** The same differences, round by round (in round order; undefined where a round lacks one). */
  cpuOverBareRounds?: (number | undefined)[]
  /** Median over rounds of bytes allocated per request. */
  allocBytes?: number
  /** Median over rounds of (these bytes − bare Express's in the same round). */
  allocOverBare?: number
}

export interface RemoteSummary extends Summary {
  /** Round trips to Redis per request, counted by the delay proxy. */
  roundTrips: number
  /** Commands Redis ran per request (INFO commandstats), Lua's inner calls included. */
  commands: Record<string, number>
}

export type RemoteSystem = 'concord-redis' | 'es-connect-redis'

export interface Machine {
  /** The commit measured, and whether lib/ or stores/ had uncommitted changes. */
  commit: string
  cpu: string
  cores: number
  memoryGiB: number
  node: string
  os: string
  date: string
  loadBefore: number[]
  loadAfter: number[]
}

export interface Results {
  config: RunConfig
  machine: Machine
  systems: SystemId[]
  /** The pool workload: requests spread over `poolSize` sessions. */
  load: Partial<Record<SystemId, Partial<Record<Kind, Summary>>>>
  /** The hot workload: every request on one session. */
  hot: Partial<Record<SystemId, Partial<Record<Kind, Summary>>>>

  remote: Partial<Record<RemoteSystem, Partial<Record<Kind, RemoteSummary>>>>
  lostUpdates: Partial<Record<SystemId, { existingCart: LostUpdates; newCart: LostUpdates }>>
  resurrection: Partial<Record<SystemId, Resurrections>>
  memory: MemoryResult[]
  /** Touch throttling, tracing and events, side by side (runs that cover every system). */
  lifecycle?: LifecycleResults
  durationSeconds: number
}

/** Medians over rounds: of req/s, and of each round's p50 and p99. */
export function summarize(runs: readonly LoadResult[]): Summary {
  const rps = runs.map((r) => r.rps)
  return {
    rps: median(rps),
    rpsMin: Math.min(...rps),
    rpsMax: Math.max(...rps),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    failures: runs.reduce((sum, r) => sum + r.failures, 0),
    rounds: runs.length,
    cpuUs: optionalMedian(runs.map((r) => r.cpuUs)),
    allocBytes: optionalMedian(runs.map((r) => r.allocBytes)),
  }
}

function optionalMedian(values: ReadonlyArray<number | undefined>): number | undefined {
  return values.every((v) => v !== undefined) && values.length > 0 ? median(values as number[]) : undefined
}

/** Round i of `runs` minus round i of `base`, for each round. */
export function roundDifferences(
  runs: readonly LoadResult[],
  base: readonly LoadResult[],
  field: 'cpuUs' | 'allocBytes',
): (number | undefined)[] {
  return runs.map((r, i) =>
    r[field] === undefined || base[i]?.[field] === undefined ? undefined : r[field]! - base[i]![field]!,
  )
}

/** The median of per-round differences of `field` (round i of `runs` minus round i of `base`). */
export function pairedDifference(runs: readonly LoadResult[], base: readonly LoadResult[], field: 'cpuUs' | 'allocBytes'): number | undefined {
  return optionalMedian(roundDifferences(runs, base, field))
}

/**
 * The median of per-round ratios: round i of `runs` over round i of `base`. Paired by round, a
 * ratio compares measurements taken close together, so drift in the machine's load cancels.
 */
export function pairedRatio(runs: readonly LoadResult[], base: readonly LoadResult[]): number {
  return median(runs.map((r, i) => r.rps / base[i]!.rps))
}
