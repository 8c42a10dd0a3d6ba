/**
 * Server children: each system runs in a process of its own, so one system's garbage, timers
 * and JIT state never weigh on another's numbers.
 */
import { execFileSync, fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { killOnExit, onCleanup } from './cleanup.js'
import type { FromServer, GcCounts, ToServer } from './servers/main.js'
import type { ServerConfig } from './servers/middleware.js'

export interface ServerChild {
  config: ServerConfig
  url: string
  pid: number
  stop(): Promise<void>
  /** The child's user+sys CPU time so far, in µs, from /proc/<pid>/stat. */
  cpuMicros(): number
  /** Starts counting the bytes the child's JS heap allocates. */
  allocStart(): Promise<void>
  /** Bytes allocated since allocStart, and the garbage collections in that time. */
  allocStop(): Promise<{ bytes: number; gc: GcCounts }>
}

/** Clock ticks per second of /proc's CPU times. */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

/** user+sys CPU of a process in µs: fields 14 and 15 of /proc/<pid>/stat, after the command name. */
export function processCpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK
}

/**
 * Starts a server child from the compiled tree `buildDir` (bench/build.ts) and resolves once it
 * listens. `nodeArgs` go to node (e.g. `--cpu-prof`); `wrapper` runs node under another program
 * (e.g. `['valgrind', '--tool=callgrind', ...]`), in the same process, so `pid` stays node's.
 */
export async function startServer(
  buildDir: string,
  config: ServerConfig,
  nodeArgs: string[] = [],
  wrapper: readonly string[] = [],
): Promise<ServerChild> {
  const [wrapperPath, ...wrapperArgs] = wrapper
  const child = fork(join(buildDir, 'bench', 'servers', 'main.js'), [JSON.stringify(config)], {
    ...(wrapperPath
      ? { execPath: wrapperPath, execArgv: [...wrapperArgs, process.execPath, ...nodeArgs] }
      : { execArgv: nodeArgs }),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  killOnExit(child)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))

  async function stop(): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return
    if (child.connected) child.send({ type: 'stop' } satisfies ToServer)
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
  const unregister = onCleanup(stop)

  const port = await new Promise<number>((resolve, reject) => {
    // Under a wrapper such as valgrind, node starts tens of times slower.
    // A busy machine (load average far above the core count) can take a minute or more too.
    const startSeconds = wrapperPath ? 600 : 300
    const timer = setTimeout(
      () =>
        reject(new Error(`bench: ${config.system} server did not start within ${startSeconds} s`)),
      startSeconds * 1000,
    )
    child.on('message', (message: FromServer) => {
      clearTimeout(timer)
      if (message.type === 'ready') resolve(message.port)
      else if (message.type === 'failed')
        reject(new Error(`bench: ${config.system} server failed:\n${message.message}`))
    })
    void exited.then(() => {
      clearTimeout(timer)
      reject(new Error(`bench: ${config.system} server exited before it was ready`))
    })
  }).catch(async (err: unknown) => {
    await unregister()
    throw err
  })

  const reply = <T extends FromServer['type']>(type: T, message: ToServer) =>
    new Promise<Extract<FromServer, { type: T }>>((resolve) => {
      const listener = (m: FromServer) => {
        if (m.type !== type) return
        child.off('message', listener)
        resolve(m as Extract<FromServer, { type: T }>)
      }
      child.on('message', listener)
      child.send(message)
    })

  return {
    config,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    stop: unregister,
    cpuMicros: () => processCpuMicros(child.pid!),
    allocStart: async () => void (await reply('alloc-started', { type: 'alloc-start' })),
    allocStop: () => reply('alloc', { type: 'alloc-stop' }),
  }
}
