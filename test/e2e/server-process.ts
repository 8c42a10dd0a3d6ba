/**
 * Runs example-app/server.ts as a real child process (`node --import tsx`), as `npm start` does,
 * and stops it with SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'

export const REPO = join(__dirname, '..', '..')
const READY = /Cart app on (http:\/\/\S+) \(store: (\w+)\)/

export interface ServerProcess {
  url: string
  store: string
  child: ChildProcess
  /** Everything the process printed so far. */
  output(): string
  /** SIGTERM, then resolves to the exit code once the process has exited. */
  stop(): Promise<number | null>
}

/**
 * Starts the server with `env` added to this process's environment and resolves once it prints
 * its URL. Rejects with its output if it exits first (or prints nothing within `readyWithin` ms,
 * a guard against a hung start, not a timing assertion).
 */
export function startServer(
  env: Record<string, string>,
  readyWithin = 30_000,
): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'example-app/server.ts'], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  )
  return new Promise<ServerProcess>((resolve, reject) => {
    const guard = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`server did not print its URL within ${readyWithin} ms:\n${out}`))
    }, readyWithin)
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      const match = READY.exec(out)
      if (match) {
        clearTimeout(guard)
        resolve({
          url: match[1]!,
          store: match[2]!,
          child,
          output: () => out,
          async stop() {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
            return exited
          },
        })
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
    })
    void exited.then((code) => {
      clearTimeout(guard)
      reject(new Error(`server exited with code ${code} before it was ready:\n${out}`))
    })
  })
}

/** Resolves with the exit code and output of a server that is expected to fail at start. */
export function runServerToExit(
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'example-app/server.ts'], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (c: Buffer) => (output += c.toString()))
  child.stderr.on('data', (c: Buffer) => (output += c.toString()))
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, output })))
}
