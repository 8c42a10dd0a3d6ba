/**
 * Everything the bench starts (server children, redis-server, the proxy, temp dirs) registers
 * how to undo itself here, so a failed or interrupted run leaves nothing behind.
 */

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

function install(): void {
  if (installed) return
  installed = true
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
