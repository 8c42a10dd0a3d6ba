/**
 * Starts real redis-server processes for tests, on free ports in temp directories.
 * Tests never flush a server they did not start; they isolate themselves with key prefixes.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { createServer, createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'

export interface RedisProcess {
  port: number
  url: string
  dir: string
  /** Hangs the server (SIGSTOP): connections stay open, nothing is answered. */
  pause(): void
  /** Resumes a paused server (SIGCONT); it then runs what queued up meanwhile. */
  resume(): void
  stop(): Promise<void>
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = createConnection({ port, host: '127.0.0.1' })
      socket.once('connect', () => {
        socket.end()
        resolve()
      })
      socket.once('error', () => {
        socket.destroy()
        if (Date.now() > deadline)
          reject(new Error(`redis-server did not listen on ${port} within ${timeoutMs}ms`))
        else setTimeout(attempt, 25)
      })
    }
    attempt()
  })
}

/** Starts redis-server on `port` (a free one by default). Extra args go straight to redis-server. */
export async function startRedisServer(
  options: { port?: number; args?: string[] } = {},
): Promise<RedisProcess> {
  const port = options.port ?? (await freePort())
  const dir = mkdtempSync(join(tmpdir(), 'concord-redis-'))
  const child: ChildProcess = spawn(
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
      ...(options.args ?? []),
    ],
    { stdio: 'ignore' },
  )
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  await waitForPort(port, 10_000)
  return {
    port,
    dir,
    url: `redis://127.0.0.1:${port}`,
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL')
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export function hasRedisServerBinary(): boolean {
  return (process.env.PATH ?? '').split(':').some((p) => {
    try {
      return statSync(join(p, 'redis-server')).isFile()
    } catch {
      return false
    }
  })
}

/** The URL of the suite's Redis: the one global setup started, or REDIS_URL. */
export function redisUrl(): string {
  const url = process.env.CONCORD_TEST_REDIS_URL ?? process.env.REDIS_URL
  if (!url) throw new Error('No Redis for tests: put redis-server on PATH or set REDIS_URL')
  return url
}

/** A key prefix unique to this call, so tests never touch keys they did not write. */
export function testPrefix(label = 'test'): string {
  return `concord-${label}:${randomUUID().slice(0, 8)}:`
}
