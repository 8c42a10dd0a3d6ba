/**
 * The machine a run was made on, for the report. Load average is recorded before and after
 * because a busy machine (other jobs on the same cores) lowers every number alike.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem, type } from 'node:os'
import type { Machine } from './results.js'

export function describeMachine(): Machine {
  const cores = cpus()
  return {
    commit: describeCommit(),
    cpu: cores[0]?.model.trim() ?? 'unknown',
    cores: cores.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    os: `${type()} ${release()}`,
    date: new Date().toISOString(),
    loadBefore: loadavg().map(round2),
    loadAfter: [],
  }
}

export function finishMachine(machine: Machine): void {
  machine.loadAfter = loadavg().map(round2)
}

function round2(n: number): number {
  return Math.round(n * 100) / 100
}

function describeCommit(): string {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, { cwd: __dirname, encoding: 'utf8' }).trim()
    const dirty = git('status', '--porcelain', '--', '../lib', '../stores') !== ''
    return `${git('rev-parse', '--short', 'HEAD')}${dirty ? ' with uncommitted changes in lib/ or stores/' : ''}`
  } catch {
    return 'unknown (not a git checkout)'
  }
}

/**
 * Waits until the machine's cores were less than `busyShare` busy over a 200 ms window (from
 * /proc/stat), or `maxMs` passed: what a load left behind (GC helper threads, PostgreSQL's vacuum
 * and checkpoints, file syncs) then lands before the next load rather than in it, where it
 * would count against whichever system comes next. Resolves to whether it got quiet.
 *
 * @example
 * ```ts
 * if (!(await untilQuiet())) log('starting on a busy machine')
 * ```
 */
export async function untilQuiet(busyShare = 0.05, maxMs = 2000): Promise<boolean> {
  const started = Date.now()
  let before = cpuTicks()
  if (before === undefined) return true
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 200))
    const after = cpuTicks()!
    const total = after.total - before.total
    if (total > 0 && (after.busy - before.busy) / total < busyShare) return true
    if (Date.now() - started >= maxMs) return false
    before = after
  }
}

/** All cores' jiffies so far, and the busy ones (not idle or waiting on I/O). */
function cpuTicks(): { total: number; busy: number } | undefined {
  let line: string
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!
  } catch {
    return undefined // not Linux: no wait
  }
  const fields = line.trim().split(/\s+/).slice(1).map(Number)
  const total = fields.reduce((sum, n) => sum + n, 0)
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0)
  return { total, busy: total - idle }
}
