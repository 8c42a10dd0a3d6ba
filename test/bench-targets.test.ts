/**
 * The bench's targets table: a CPU overhead target is judged on the medians, and shows the
 * range of the same ratio round by round.
 */
import type { LoadResult } from '../bench/load'
import { roundDifferences, type Results, type Summary } from '../bench/results'
import { checkTargets, roundRatios } from '../bench/targets'

/** A run's results holding only pool reads of the given systems. */
function resultsWith(load: Record<string, Summary>): Results {
  return {
    load: Object.fromEntries(Object.entries(load).map(([id, read]) => [id, { read }])),
    hot: {},
    remote: {},
    lostUpdates: {},
    resurrection: {},
    memory: [],
  } as unknown as Results
}

function summary(cpuOverBareUs: number, cpuOverBareRounds?: (number | undefined)[]): Summary {
  return { rps: 1, p50: 1, p99: 1, cpuOverBareUs, cpuOverBareRounds } as Summary
}

describe('bench targets', () => {
  it('ranges the per-round ratios, leaving out rounds without two positive overheads', () => {
    expect(roundRatios([30, 33, 24, undefined, 10], [20, 30, 24, 20, -2])).toBe('1.00–1.50×')
    expect(roundRatios([30], [20])).toBeUndefined()
    expect(roundRatios(undefined, [20, 30])).toBeUndefined()
  })

  it('judges on the medians and shows the rounds beside them', () => {
    const checks = checkTargets(
      resultsWith({
        'concord-memory': summary(26, [20, 26, 40]),
        limit: summary(20, [25, 20, 16]),
      }),
    )
    const read = checks.find((c) =>
      c.target.startsWith('MemoryStore: CPU overhead per read (pool) ≤ 1.3× the minimal'),
    )
    expect(read).toEqual({
      target: expect.any(String),
      measured: '1.30× (26.0 vs 20.0 µs; rounds 0.80–2.50×)',
      met: true,
    })
  })

  it('leaves the range out when a run has no per-round figures', () => {
    const checks = checkTargets(resultsWith({ 'concord-memory': summary(30), limit: summary(20) }))
    const read = checks.find((c) =>
      c.target.startsWith('MemoryStore: CPU overhead per read (pool) ≤ 1.3× the minimal'),
    )
    expect([read?.measured, read?.met]).toEqual(['1.50× (30.0 vs 20.0 µs)', false])
  })

  it('pairs rounds by index for the differences over bare', () => {
    const run = (cpuUs?: number) => ({ cpuUs }) as LoadResult
    expect(
      roundDifferences([run(90), run(95), run()], [run(70), run(80), run(75)], 'cpuUs'),
    ).toEqual([20, 15, undefined])
  })
})
