/**
 * The machine a run was made on, for the report. Load average is recorded before and after
 * because a busy machine (other jobs on the same cores) lowers every number alike.
 */
import { execFileSync } from 'node:child_process'
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
