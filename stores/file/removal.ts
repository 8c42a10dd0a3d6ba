/**
 * Removing session files for the file store: every removal runs under the session's lock and
 * reads the file again first, so a session saved or touched meanwhile is never lost.
 */
import { join } from 'node:path'
import createDebug from 'debug'
import type { LifecycleListeners } from '../../lib/store-notices.js'
import type { SessionFiles } from './files.js'
import type { Read, Slot, Slots } from './format.js'
import { KEY } from './format.js'
import * as f from './fs.js'
import type { Held, Locks } from './lock.js'
import type { LockedRunner } from './locked-runner.js'
import { eachSessionFile } from './reaper.js'
import type { UserDirectory } from './users.js'

const debug = createDebug('concord-session:file')

/** What removing files needs of its store. */
export interface RemovalParts {
  dirs: { sessions: string; users: string }
  concurrency: number
  slots: Slots
  locks: Locks
  files: SessionFiles
  users: UserDirectory
  notices: LifecycleListeners
  runner: LockedRunner
}

/**
 * Deletes session files and their user index entries, and moves corrupt files aside.
 *
 * @example
 * ```ts
 * const removal = new SessionRemoval(parts)
 * await removal.clearAll()
 * ```
 */
export class SessionRemoval {
  readonly #dirs: { sessions: string; users: string }
  readonly #concurrency: number
  readonly #slots: Slots
  readonly #locks: Locks
  readonly #files: SessionFiles
  readonly #users: UserDirectory
  readonly #notices: LifecycleListeners
  readonly #runner: LockedRunner

  constructor(parts: RemovalParts) {
    this.#dirs = parts.dirs
    this.#concurrency = parts.concurrency
    this.#slots = parts.slots
    this.#locks = parts.locks
    this.#files = parts.files
    this.#users = parts.users
    this.#notices = parts.notices
    this.#runner = parts.runner
  }

  /** Deletes what `read` found, under the caller's lock: the file and its index entry. */
  async removeLocked(slot: Slot, read: Read, held: Held, why: string): Promise<void> {
    if (read.kind === 'missing') return
    this.#locks.assertHeld(held)
    if (read.kind === 'corrupt') return this.#files.moveAside(slot, read.reason)
    if (read.kind === 'forward') return f.unlinkQuiet(slot.file)
    await f.unlinkQuiet(slot.file)
    if (read.file.userId !== undefined) await this.#users.remove(read.file.userId, slot.key)
    if (why !== 'destroyed') debug('removed session %s (%s)', slot.key, why)
  }

  /**
   * Removes an expired or corrupt file that `load` found, once its lock is held and it is checked
   * again.
   */
  async cleanup(slot: Slot, what: 'expired' | 'corrupt', reason: string): Promise<void> {
    if (what === 'expired') {
      await this.removeIfExpired(slot, 'load')
      return
    }
    await this.#underLock('move a corrupt session aside', slot, async () => {
      const again = await this.#files.read(slot)
      if (again.kind === 'corrupt') await this.#files.moveAside(slot, reason)
    })
  }

  /** Removes the session if it is still expired under its lock; true if a session expired. */
  async removeIfExpired(slot: Slot, seen: 'load' | 'prune'): Promise<boolean> {
    return this.#underLock('remove an expired session', slot, async (held) => {
      const read = await this.#files.read(slot)
      // Saved or touched meanwhile: it stays.
      if (read.kind === 'ok' && read.expiresAt > Date.now()) return false
      await this.removeLocked(slot, read, held, 'expired')
      if (read.kind !== 'ok') return false
      this.#notices.expired(read.file.id, seen, read.file.userId)
      return true
    })
  }

  /**
   * Drops an index entry whose session is gone or has another owner, checked under the session's
   * lock.
   */
  async pruneEntry(userId: string, slot: Slot): Promise<void> {
    await this.#underLock('prune the user index', slot, async () => {
      const read = await this.#files.read(slot)
      if (read.kind !== 'corrupt' && (read.kind !== 'ok' || read.file.userId !== userId))
        await this.#users.remove(userId, slot.key)
    })
  }

  /** Removes every session file, then the index entries left pointing at them (`clear`). */
  async clearAll(): Promise<void> {
    await eachSessionFile(this.#dirs.sessions, this.#concurrency, (key) => {
      const slot = this.#slots.byKey(key)
      return this.#underLock('clear a session', slot, async (held) =>
        this.removeLocked(slot, await this.#files.read(slot), held, 'cleared'),
      )
    })
    // What remains in users/ points at sessions that are gone now; prune it under the same locks.
    for (const user of await f.readdirOrEmpty(this.#dirs.users)) {
      if (!KEY.test(user)) continue
      const dir = join(this.#dirs.users, user)
      await f.forEachLimited(
        (await f.readdirOrEmpty(dir)).filter((k) => KEY.test(k)),
        this.#concurrency,
        (key) => {
          const slot = this.#slots.byKey(key)
          return this.#underLock('clear a session', slot, async () => {
            if ((await this.#files.read(slot)).kind === 'missing')
              await f.unlinkQuiet(join(dir, key))
          })
        },
      )
      await f.rmdirQuiet(dir)
    }
  }

  #underLock<T>(what: string, slot: Slot, fn: (held: Held) => Promise<T>): Promise<T> {
    return this.#runner.run(what, slot, undefined, fn)
  }
}
