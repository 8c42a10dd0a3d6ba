/**
 * Clearing what expired or crashed: expired sessions, temp files of writes that will never finish,
 * stale locks, and empty user directories.
 */
import { join } from 'node:path'
import { StoreError } from '../../lib/store.js'
import { KEY } from './format.js'
import { forEachLimited, fsReadlink, isCode, lstatOrNull, readdirOrEmpty, rmdirQuiet, statOrNull, unlinkQuiet } from './fs.js'
import type { Locks } from './lock.js'
import { tempOwner } from './lock.js'

/** What the reaper needs from its store. */
export interface ReapTarget {
  dirs: { tmp: string; locks: string; users: string }
  concurrency: number
  /** The lock lease in ms: anything a crashed writer left is older than this once it is stale. */
  lease: number
  locks: Locks
  eachSessionExpiry(fn: (key: string, expiresAt: number) => Promise<unknown>): Promise<void>
  /** Removes the session if it is still expired once its lock is held; true if it did. */
  removeIfExpired(key: string): Promise<boolean>
}

/** Deletes expired sessions and what crashed writers left; resolves to the number of sessions deleted. */
export async function reap(target: ReapTarget): Promise<number> {
  const { dirs, concurrency, lease, locks } = target
  let removed = 0
  const now = Date.now()
  await target.eachSessionExpiry(async (key, expiresAt) => {
    if (expiresAt > now) return
    try {
      if (await target.removeIfExpired(key)) removed++
    } catch (err) {
      // A session held by a live process past lockTimeout is skipped until the next reap.
      if (!(err instanceof StoreError && err.code === 'ETIMEDOUT')) throw err
    }
  })
  await sweepTemp(dirs, concurrency, lease)
  // Index directories are left when they empty (removing them on every unlink costs a failed
  // rmdir each time); they go here, and a save that needs one makes it again.
  await forEachLimited(await readdirOrEmpty(dirs.users), concurrency, (user) => rmdirQuiet(join(dirs.users, user)))
  await forEachLimited(await readdirOrEmpty(dirs.locks), concurrency, async (name) => {
    const path = join(dirs.locks, name)
    if (KEY.test(name)) {
      const seen = await locks.inspect(path)
      if (seen !== 'gone' && seen.stale) await locks.breakLock(path, seen)
    } else {
      // A lock moved aside by a breaker that crashed before deleting it (lstat: a symlink lock
      // points nowhere).
      const st = await lstatOrNull(path)
      if (st && Date.now() - st.ctimeMs > lease) await unlinkQuiet(path)
    }
  })
  return removed
}

/**
 * Deletes temp files whose write will never be renamed into place. A temp file is named after the
 * lock its writer held, and a writer renames it only while that lock is still its own; so once the
 * lock is gone or belongs to another write, the file is garbage, wherever its writer ran. Run at
 * start-up, so a process killed mid-write leaves nothing behind when it comes back. Files in
 * another shape count as garbage once older than the lease.
 */
export async function sweepTemp(dirs: { tmp: string; locks: string }, concurrency: number, lease: number): Promise<number> {
  let removed = 0
  await forEachLimited(await readdirOrEmpty(dirs.tmp), concurrency, async (name) => {
    const path = join(dirs.tmp, name)
    const owner = tempOwner(name)
    if (owner) {
      let holder: string | undefined
      try {
        holder = await fsReadlink(join(dirs.locks, owner.key))
      } catch (err) {
        if (!isCode(err, 'ENOENT') && !isCode(err, 'EINVAL')) throw err
      }
      if (holder === owner.text) return // its writer still holds the lock: in progress
    } else {
      const st = await statOrNull(path)
      if (!st || Date.now() - st.ctimeMs <= lease) return
    }
    await unlinkQuiet(path)
    removed++
  })
  return removed
}
