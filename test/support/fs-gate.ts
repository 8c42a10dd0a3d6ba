/** Waiting on the file system without sleeps standing in for events: conditions and FIFO gates. */
import { execFileSync } from 'node:child_process'
import { lstatSync, mkdirSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { dirname } from 'node:path'

/** Resolves once `condition` holds, checking every few ms (the wait is for the condition, not a time). */
export async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2))
}

/** True if a lock symlink is there (lstat: it points nowhere, so existsSync would say no). */
export function lockExists(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink()
  } catch {
    return false
  }
}

/**
 * A gate made of a FIFO: a store that opens it to write (a user index entry) stops in open() until
 * the test opens the other end. So a save can be held inside its lock for as long as a test needs.
 */
export function fifoGate(path: string): {
  reached(lock: string): Promise<void>
  open(): Promise<void>
} {
  mkdirSync(dirname(path), { recursive: true })
  execFileSync('mkfifo', [path])
  return {
    reached: (lock) => waitUntil(() => lockExists(lock)),
    async open() {
      await (await open(path, 'r')).close()
    },
  }
}
