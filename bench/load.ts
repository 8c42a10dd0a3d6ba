/**
 * One load run with autocannon. Every request carries a session cookie from a pool made
 * beforehand, rotated per request, so reads hit real stored sessions spread over connections.
 */
import autocannon from 'autocannon'
import { SKUS } from './http.js'
import type { GcCounts } from './servers/main.js'

export type Kind = 'read' | 'write'
export const KINDS: readonly Kind[] = ['read', 'write']

/** `pool`: requests spread over many sessions, as real traffic is. `hot`: all on one session. */
export type Workload = 'pool' | 'hot'
export const WORKLOADS: readonly Workload[] = ['pool', 'hot']

export interface LoadOptions {
  url: string
  kind: Kind
  /** `name=value` session cookies; '' entries send no cookie (the bare-Express ceiling). */
  pool: readonly string[]
  connections: number
  seconds: number
  /** Send exactly this many requests instead of loading for `seconds`. */
  amount?: number
}

export interface LoadResult {
  rps: number
  /** Latency percentiles in ms, exact: taken from every response time, not autocannon's 1 ms buckets. */
  p50: number
  p99: number
  requests: number
  /** Responses that were not 2xx, plus connection errors and timeouts: should be 0. */
  failures: number
  /** The server process's user+sys CPU per answered request, in µs (set by the orchestrator). */
  cpuUs?: number
  /** Bytes the server's JS heap allocated per answered request (set by the orchestrator). */
  allocBytes?: number
  /** The server's garbage collections over the run (set by the orchestrator). */
  gc?: GcCounts
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { pool, kind } = options
  let n = 0
  const times: number[] = []
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        ...(options.amount === undefined
          ? { duration: options.seconds }
          : { amount: options.amount, timeout: 600 }),
        requests: [
          {
            method: kind === 'read' ? 'GET' : 'POST',
            setupRequest(req) {
              const i = n++
              const cookie = pool[i % pool.length]
              req.headers = cookie ? { cookie } : {}
              // Cycle sessions fastest and products slower, so every session sees every product.
              req.path =
                kind === 'read'
                  ? '/cart'
                  : `/cart/add/${SKUS[Math.floor(i / pool.length) % SKUS.length]}`
              return req
            },
          },
        ],
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    )
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) times.push(responseTime)
    })
  })
  times.sort((a, b) => a - b)
  return {
    rps: result['2xx'] / result.duration,
    p50: percentile(times, 0.5),
    p99: percentile(times, 0.99),
    requests: result['2xx'],
    failures: result.non2xx + result.errors + result.timeouts,
  }
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
