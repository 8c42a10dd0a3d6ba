/**
 * Clearing what expired or crashed: expired sessions, temp files of writes that will never finish,
 * stale locks, and empty user directories.
 */
import { join } from 'node:path'
import { StoreError } from '../../lib/store.js'
import { KEY, SESSION_FILE, isForwardStat } from './format.js'
import {
  forEachLimited,
  fsReadlink,
  isCode,
  lstatOrNull,
  openDirOrNull,
  readdirOrEmpty,
  rmdirQuiet,
  statOrNull,
  unlinkQuiet,
} from './fs.js'
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

/**
 * Deletes expired sessions and what crashed writers left; resolves to the number of sessions
 * deleted.
 */
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
  await sweepTemp(dirs, concurrency, lease, locks)
  // Index directories are left when they empty (removing them on every unlink costs a failed
  // rmdir each time); they go here, and a save that needs one makes it again.
  await forEachLimited(await readdirOrEmpty(dirs.users), concurrency, (user) =>
    rmdirQuiet(join(dirs.users, user)),
  )
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
export async function sweepTemp(
  dirs: { tmp: string; locks: string },
  concurrency: number,
  lease: number,
  locks: Locks,
): Promise<number> {
  let removed = 0
  await forEachLimited(await readdirOrEmpty(dirs.tmp), concurrency, async (name) => {
    const path = join(dirs.tmp, name)
    const owner = tempOwner(name)
    if (owner) {
      const lock = join(dirs.locks, owner.key)
      let holder: string | undefined
      try {
        holder = await fsReadlink(lock)
      } catch (err) {
        if (!isCode(err, 'ENOENT') && !isCode(err, 'EINVAL')) throw err
      }
      if (holder === owner.text) {
        // Still its writer's lock: in progress, unless that writer is dead (a process killed
        // mid-write whose lock nobody has broken yet). Then the lock goes, and the file with it.
        const seen = await locks.inspect(lock)
        if (seen === 'gone' || !seen.stale || seen.text !== owner.text) return
        await locks.breakLock(lock, seen)
      }
    } else {
      const st = await statOrNull(path)
      if (!st || Date.now() - st.ctimeMs <= lease) return
    }
    await unlinkQuiet(path)
    removed++
  })
  return removed
}

/**
 * Calls `fn` with the key of each session file, at most `concurrency` at once, streaming the
 * directory.
 */
export async function eachSessionFile(
  sessions: string,
  concurrency: number,
  fn: (key: string) => Promise<unknown>,
): Promise<void> {
  const dir = await openDirOrNull(sessions)
  if (!dir) return
  // Streamed, not listed: memory stays flat however many sessions there are.
  await forEachLimited(dir, concurrency, async (entry) => {
    const match = SESSION_FILE.exec(entry.name)
    if (match) await fn(match[1]!)
  })
}

/**
 * Like eachSessionFile, with each session's expiry (its mtime) from one stat; no file is opened.
 * `forward` is true for a renewed id's forward, whose mtime is the end of its grace.
 */
export async function eachSessionExpiry(
  sessions: string,
  concurrency: number,
  fn: (key: string, expiresAt: number, forward: boolean) => Promise<unknown>,
): Promise<void> {
  await eachSessionFile(sessions, concurrency, async (key) => {
    const st = await statOrNull(`${sessions}/${key}.json`)
    if (st) await fn(key, Math.round(st.mtimeMs), isForwardStat(st))
  })
}
