/** Runs test/fixtures/session-app.ts as a real child process and stops it with SIGKILL. */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'

const REPO = join(__dirname, '..', '..')
const APP = join(REPO, 'test', 'fixtures', 'session-app.ts')

export interface AppProcess {
  url: string
  child: ChildProcess
  output(): string
  stop(): Promise<void>
}

/** Starts the app with `env` added and resolves once it prints its URL; rejects with its output if it exits first. */
export function startApp(env: Record<string, string>): Promise<AppProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', APP], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /listening (\S+)/.exec(out)
      if (match) {
        resolve({
          url: match[1]!,
          child,
          output: () => out,
          async stop() {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
            await exited
          },
        })
      }
    })
    child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()))
    void exited.then(() => reject(new Error(`app exited before it was ready:\n${out}`)))
  })
}
