/**
 * Child processes for tests: started with their output collected, waited on by the lines they
 * print, and killed by the test that started them (see `killAll`).
 */
import { spawn, type ChildProcess } from 'node:child_process'

export interface Run {
  child: ChildProcess
  /** Resolves on the first stdout line that matches. */
  line(pattern: RegExp): Promise<string>
  /** Every stdout line so far. */
  lines(): string[]
  exit: Promise<{
    code: number | null
    signal: NodeJS.Signals | null
    stdout: string
    stderr: string
  }>
}

const running = new Set<ChildProcess>()

/** Starts `argv` with its output collected. */
export function run(argv: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Run {
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
  })
  running.add(child)
  let stdout = ''
  let stderr = ''
  const waiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = []
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
    for (const w of [...waiters]) {
      const line = stdout.split('\n').find((l) => w.pattern.test(l))
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(line)
      }
    }
  })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const exit = new Promise<{
    code: number | null
    signal: NodeJS.Signals | null
    stdout: string
    stderr: string
  }>((resolve) =>
    child.once('exit', (code, signal) => {
      running.delete(child)
      resolve({ code, signal, stdout, stderr })
    }),
  )
  return {
    child,
    exit,
    lines: () => stdout.split('\n').filter((l) => l !== ''),
    line: (pattern) =>
      Promise.race([
        new Promise<string>((resolve) => waiters.push({ pattern, resolve })),
        exit.then((e) => {
          throw new Error(
            `child exited (${e.code ?? e.signal}) before printing ${pattern}: ${e.stderr}`,
          )
        }),
      ]),
  }
}

/** Kills every child this module started that is still running. */
export function killAll(): void {
  for (const child of running) child.kill('SIGKILL')
}
