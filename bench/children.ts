/**
 * Server children: each system runs in a process of its own, so one system's garbage, timers
 * and JIT state never weigh on another's numbers.
 */
import { fork } from 'node:child_process'
import { join } from 'node:path'
import { killOnExit, onCleanup } from './cleanup.js'
import type { FromServer, ToServer } from './servers/main.js'
import type { ServerConfig } from './servers/middleware.js'

export interface ServerChild {
  config: ServerConfig
  url: string
  pid: number
  stop(): Promise<void>
}

/**
 * Starts a server child from the compiled tree `buildDir` (bench/build.ts) and resolves once it
 * listens. `nodeArgs` go to node (e.g. `--cpu-prof`).
 */
export async function startServer(buildDir: string, config: ServerConfig, nodeArgs: string[] = []): Promise<ServerChild> {
  const child = fork(join(buildDir, 'bench', 'servers', 'main.js'), [JSON.stringify(config)], {
    execArgv: nodeArgs,
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
    const timer = setTimeout(() => reject(new Error(`bench: ${config.system} server did not start within 60 s`)), 60_000)
    child.on('message', (message: FromServer) => {
      clearTimeout(timer)
      if (message.type === 'ready') resolve(message.port)
      else reject(new Error(`bench: ${config.system} server failed:\n${message.message}`))
    })
    void exited.then(() => reject(new Error(`bench: ${config.system} server exited before it was ready`)))
  }).catch(async (err: unknown) => {
    await unregister()
    throw err
  })

  return { config, url: `http://127.0.0.1:${port}`, pid: child.pid!, stop: unregister }
}
