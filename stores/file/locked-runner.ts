import { KeyedQueue } from '../../lib/keyed-queue.js'
import { storeError } from './errors.js'
import type { Slot } from './format.js'
import * as f from './fs.js'
import type { Held, Locks } from './lock.js'

/** The subdirectories of a FileStore's directory. */
export const SUBDIRS = ['sessions', 'locks', 'users', 'tmp', 'corrupt'] as const

/**
 * Runs FileStore's operations on one session under its lock, and makes the directory layout
 * on first use (again if a directory vanished).
 */
export class LockedRunner {
  readonly #dir: string
  readonly #dirs: Record<(typeof SUBDIRS)[number], string>
  readonly #locks: Locks
  /**
   * This process's own operations on one session run one at a time, so they never spin on the lock
   * file.
   */
  readonly #queue = new KeyedQueue()
  #ready: Promise<void> | undefined

  constructor(dir: string, dirs: Record<(typeof SUBDIRS)[number], string>, locks: Locks) {
    this.#dir = dir
    this.#dirs = dirs
    this.#locks = locks
  }

  /**
   * Runs `fn` holding the session's lock: one at a time in this process (a queue), and between
   * processes (the lock file). Makes the directories on first use, and again if they vanished;
   * maps errors to StoreError.
   */
  run<T>(
    what: string,
    slot: Slot,
    deadline: number | undefined,
    fn: (held: Held) => Promise<T>,
  ): Promise<T> {
    return this.#queue.run(slot.key, async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.setup()
          const held = await this.#locks.acquire(slot.lock, deadline)
          try {
            return await fn(held)
          } finally {
            await this.#locks.release(held)
          }
        } catch (err) {
          // ENOENT here is a directory removed under us (the session file's own absence never
          // throws): make the layout again once, before the commit point, and redo the operation.
          if (f.isCode(err, 'ENOENT') && attempt === 0) {
            this.#ready = undefined
            continue
          }
          throw storeError(this.#dir, what, err)
        }
      }
    })
  }

  /** Makes the directory layout once (again after a directory was removed). */
  setup(): Promise<void> {
    this.#ready ??= (async () => {
      await f.makeDir(this.#dir)
      for (const sub of SUBDIRS) await f.makeDir(this.#dirs[sub])
    })().catch((err: unknown) => {
      this.#ready = undefined
      throw err
    })
    return this.#ready
  }
}
