/**
 * The bench's own redis-server (never the machine's on 6379), and the command counts it keeps.
 * Started here rather than with test/support's helper so that the process and its directory are
 * also removed if the bench dies without cleaning up (cleanup.ts).
 */
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Redis from 'ioredis'
import { freePort } from '../test/support/redis-server.js'
import { killOnExit, onCleanup, removeOnExit } from './cleanup.js'

export interface BenchRedis {
  port: number
  url: string
  /** Calls per command since the server started (INFO commandstats). */
  commandCounts(): Promise<Record<string, number>>
  stop(): Promise<void>
}

export async function startBenchRedis(): Promise<BenchRedis> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'concord-bench-redis-'))
  const removeDir = removeOnExit(dir)
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    {
      stdio: 'ignore',
    },
  )
  killOnExit(child)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stopServer = onCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
    await removeDir()
  })
  const url = `redis://127.0.0.1:${port}`
  await listening(port, 10_000)
  const admin = new Redis(url, { lazyConnect: true })
  await admin.connect()
  const stop = onCleanup(async () => {
    admin.disconnect()
    await stopServer()
  })
  return {
    port,
    url,
    async commandCounts() {
      const counts: Record<string, number> = {}
      for (const match of (await admin.info('commandstats')).matchAll(
        /^cmdstat_([^:]+):calls=(\d+)/gm,
      )) {
        counts[match[1]!] = Number(match[2])
      }
      return counts
    },
    stop,
  }
}

function listening(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => {
        socket.end()
        resolve()
      })
      socket.once('error', () => {
        socket.destroy()
        if (Date.now() > deadline)
          reject(new Error(`bench: redis-server did not listen on ${port} within ${timeoutMs} ms`))
        else setTimeout(attempt, 25)
      })
    }
    attempt()
  })
}

/**
 * Commands per request between two snapshots, e.g. `{ evalsha: 1, hgetall: 1 }`. Commands a Lua
 * script calls are counted too (Redis counts them), so this says what ran; the proxy says what
 * crossed the network. The admin connection's own INFO is left out.
 */
export function commandsPerRequest(
  before: Record<string, number>,
  after: Record<string, number>,
  requests: number,
): Record<string, number> {
  const perRequest: Record<string, number> = {}
  for (const [name, calls] of Object.entries(after)) {
    if (name === 'info') continue
    const delta = calls - (before[name] ?? 0)
    if (delta > 0) perRequest[name] = Math.round((delta / requests) * 100) / 100
  }
  return perRequest
}
