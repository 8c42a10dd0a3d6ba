/**
 * Everything the bench starts (server children, redis-server, the proxy, temp dirs) registers
 * how to undo itself here, so a failed or interrupted run leaves nothing behind.
 *
 * Two layers: `onCleanup` undoes things in order, gracefully, at the end of a run or on a signal;
 * `killOnExit` and `removeOnExit` are the last resort when the process dies some other way (an
 * uncaught error, stdout closed by `| head`), because an 'exit' handler can only run sync code.
 */
import type { ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'

type Undo = () => void | Promise<void>

const undos: Undo[] = []
let installed = false

/** Registers `undo` to run at cleanup; returns a function that runs it early and unregisters it. */
export function onCleanup(undo: Undo): () => Promise<void> {
  install()
  undos.push(undo)
  return async () => {
    const i = undos.indexOf(undo)
    if (i !== -1) undos.splice(i, 1)
    await undo()
  }
}

/** Runs every registered undo, newest first; one failing does not stop the others. */
export async function cleanupAll(): Promise<void> {
  while (undos.length > 0) {
    const undo = undos.pop()!
    try {
      await undo()
    } catch (err) {
      console.error('bench cleanup:', (err as Error).message)
    }
  }
}

const children = new Set<ChildProcess>()
const dirs = new Set<string>()

/** Kills `child` if this process exits while it still runs. */
export function killOnExit(child: ChildProcess): void {
  install()
  children.add(child)
  child.once('exit', () => children.delete(child))
}

/** Removes `dir` when this process exits, however it exits; also registered with onCleanup. */
export function removeOnExit(dir: string): () => Promise<void> {
  dirs.add(dir)
  return onCleanup(() => {
    dirs.delete(dir)
    rmSync(dir, { recursive: true, force: true })
  })
}

function install(): void {
  if (installed) return
  installed = true
  process.on('exit', () => {
    for (const child of children) child.kill('SIGKILL')
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      console.error(`\nbench: ${signal}, cleaning up`)
      void cleanupAll().finally(() => process.exit(130))
    })
  }
}

/** Runs an entry point's main, then cleans up and exits, with status 1 if main failed. */
export function runMain(main: () => Promise<void>): void {
  main()
    .catch((err: Error) => {
      console.error(err.stack ?? err.message)
      process.exitCode = 1
    })
    .finally(async () => {
      await cleanupAll()
      process.exit()
    })
}
