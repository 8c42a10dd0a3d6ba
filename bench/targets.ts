/**
 * The targets of issue 7, checked against a run. Reported, never asserted: a miss is a finding
 * to profile, not a failed build.
 */
import type { Kind } from './load.js'
import type { Results } from './results.js'
import type { SystemId } from './systems.js'

export interface TargetCheck {
  target: string
  measured: string
  /** `undefined` when the run has no data for it (a system not built yet, or filtered out). */
  met: boolean | undefined
}

export function checkTargets(results: Results): TargetCheck[] {
  const checks: TargetCheck[] = []
  const ratio = (target: string, r: number | undefined, min: number) => {
    checks.push({ target, measured: r === undefined ? 'n/a' : `${r.toFixed(2)}×`, met: r === undefined ? undefined : r >= min })
  }
  const vsBare = (id: SystemId, kind: Kind) => results.load[id]?.[kind]?.vsBare
  const vsPeer = (id: SystemId, kind: Kind) => results.load[id]?.[kind]?.vsPeer
  for (const kind of ['read', 'write'] as const) {
    ratio(`concord MemoryStore ≥ 0.85× bare Express (${kind})`, vsBare('concord-memory', kind), 0.85)
  }
  for (const kind of ['read', 'write'] as const) {
    ratio(`concord MemoryStore ≥ 1.25× express-session MemoryStore (${kind})`, vsPeer('concord-memory', kind), 1.25)
  }
  ratio('concord RedisStore ≥ 1.3× connect-redis (read)', vsPeer('concord-redis', 'read'), 1.3)

  const ours = results.remote['concord-redis']?.read?.p50
  const theirs = results.remote['es-connect-redis']?.read?.p50
  const latency = ours !== undefined && theirs !== undefined ? ours / theirs : undefined
  checks.push({
    target: 'remote Redis: concord p50 read ≤ 0.6× connect-redis',
    measured: latency === undefined ? 'n/a' : `${latency.toFixed(2)}× (${ours!.toFixed(2)} vs ${theirs!.toFixed(2)} ms)`,
    met: latency === undefined ? undefined : latency <= 0.6,
  })

  for (const kind of ['read', 'write'] as const) {
    ratio(`concord FileStore ≥ 3× session-file-store (${kind})`, vsPeer('concord-file', kind), 3)
  }

  for (const id of ['concord-memory', 'concord-redis', 'concord-file'] as const) {
    for (const variant of ['existingCart', 'newCart'] as const) {
      const lost = results.lostUpdates[id]?.[variant]
      checks.push({
        target: `${id}: 0 lost updates (${variant === 'existingCart' ? 'items added to an existing cart' : 'the adds also create the cart'})`,
        measured: lost ? `${lost.sent - lost.survived} of ${lost.sent} lost` : 'n/a',
        met: lost ? lost.survived === lost.sent : undefined,
      })
    }
    const back = results.resurrection[id]
    checks.push({
      target: `${id}: 0 resurrections`,
      measured: back ? `${back.resurrected} of ${back.trials}` : 'n/a',
      met: back ? back.resurrected === 0 : undefined,
    })
  }
  return checks
}
