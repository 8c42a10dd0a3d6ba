/**
 * The cross-process lock on one session: a symlink at locks/<key>, made with one symlink() that
 * fails if the name exists, whose target (never followed) names the holder:
 *
 *   c1.<pid>.<host+PID namespace digest>.<process nonce>.<ms base 36>.<counter base 36>
 *
 * The lock is a lease. Its holder renews it (moves the symlink's own mtime) while it works; a lock
 * not renewed for `lease` ms is broken by whoever waits for it. A holder on this host and PID
 * namespace that died is seen at once (its pid is gone). Before it applies anything, a holder
 * checks that its lease still has a third of its length to run: one that was paused or starved
 * long enough to be broken gives its write up instead of applying it over the next holder's.
 */
import type { Stats } from 'node:fs'
import { createHash, randomBytes } from 'node:crypto'
import { readlinkSync } from 'node:fs'
import { link, lstat, readFile, readlink, rename } from 'node:fs/promises'
import { hostname } from 'node:os'
import { basename } from 'node:path'
import createDebug from 'debug'
import { StoreError } from '../../lib/store.js'
import { fsLutimes, fsSymlink, fsUnlink, isCode, sleep, unlinkQuiet } from './fs.js'

const debug = createDebug('concord-session:file')

const LOCK_FORMAT = 'c1'

/** A lock this process holds. */
export interface Held {
  readonly path: string
  /** The symlink's target: unique to this acquisition. Temp files of the write carry it too. */
  readonly text: string
  /** Epoch ms of the last renewal (or the acquisition): the lease runs from here. */
  renewedAt: number
}

/** What a look at a lock found, for breaking it only if it is still the same lock. */
export interface LockSeen {
  stale: boolean
  text: string
  ino: number
}

/**
 * The locks of one store directory, with the timer that renews those this store holds.
 *
 * @example
 * ```ts
 * const locks = new Locks('/srv/sessions', '/srv/sessions/tmp', 3000, 5000)
 * const held = await locks.acquire('/srv/sessions/locks/<key>', deadline)
 * try { locks.assertHeld(held, deadline); await rename(temp, file) } finally { await locks.release(held) }
 * ```
 */
export class Locks {
  readonly #dir: string
  readonly #tmp: string
  readonly #lease: number
  readonly #lockTimeout: number
  /** A holder applies nothing once its lease has run this long: a third of it is left as margin. */
  readonly #cutoff: number
  readonly #held = new Set<Held>()
  readonly #timer: NodeJS.Timeout

  /** `tmp` is where writes under these locks keep their temp files (see breakLock). */
  constructor(dir: string, tmp: string, lease: number, lockTimeout: number) {
    this.#dir = dir
    this.#tmp = tmp
    this.#lease = lease
    this.#lockTimeout = lockTimeout
    this.#cutoff = (lease * 2) / 3
    // One timer for every lock this store holds; a save holds its lock for milliseconds, so most
    // ticks find nothing to renew.
    this.#timer = setInterval(() => this.#renew(), Math.max(1, lease / 4))
    this.#timer.unref()
  }

  /**
   * Takes the lock at `path`, waiting for a live holder until `lockTimeout` or `deadline`,
   * whichever is first.
   */
  async acquire(path: string, deadline?: number): Promise<Held> {
    const started = Date.now()
    const byTimeout = started + this.#lockTimeout
    const limit = deadline !== undefined && deadline < byTimeout ? deadline : byTimeout
    for (let attempt = 0; ; attempt++) {
      const text = lockText()
      const at = Date.now()
      try {
        // One system call makes the lock with its holder inside. The target is under 60 bytes, so
        // ext4 keeps it in the inode (no data block to allocate or free).
        await fsSymlink(text, path)
      } catch (err) {
        if (!isCode(err, 'EEXIST')) throw err
        const seen = await this.inspect(path)
        if (seen !== 'gone' && seen.stale) {
          await this.breakLock(path, seen)
        } else if (seen !== 'gone') {
          if (Date.now() >= limit) {
            throw new StoreError(
              limit === byTimeout
                ? `FileStore: timed out after ${this.#lockTimeout} ms waiting for another ` +
                    `process's lock on a session in ${this.#dir}`
                : "FileStore: the save's deadline passed while it waited for another process's " +
                    `lock on a session in ${this.#dir}; it was not applied`,
              { code: 'ETIMEDOUT', cause: err },
            )
          }
          // Holds last milliseconds; back off with jitter so waiting processes do not march in
          // step.
          await sleep(Math.min(50, 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2))
        }
        continue
      }
      const held: Held = { path, text, renewedAt: at }
      this.#held.add(held)
      HELD.add(path)
      return held
    }
  }

  /**
   * Throws a StoreError (code ETIMEDOUT) unless `held` may still be acted on: the deadline has not
   * passed and the lease has at least a third of its length left. Called just before the write
   * that commits, so a save answered with an error never lands later.
   */
  assertHeld(held: Held, deadline?: number): void {
    const now = Date.now()
    if (deadline !== undefined && now >= deadline) {
      throw new StoreError(
        `FileStore: a save in ${this.#dir} reached its deadline before it was written; it was ` +
          `not applied`,
        {
          code: 'ETIMEDOUT',
        },
      )
    }
    if (now - held.renewedAt >= this.#cutoff) {
      throw new StoreError(
        `FileStore: this process could not renew its lock on a session in ${this.#dir} for ` +
          `${now - held.renewedAt} ms ` +
          `(paused or overloaded), so another may have taken it; the write was not applied`,
        { code: 'ETIMEDOUT' },
      )
    }
  }

  async release(held: Held): Promise<void> {
    this.#held.delete(held)
    HELD.delete(held.path)
    try {
      if (Date.now() - held.renewedAt < this.#cutoff) {
        await fsUnlink(held.path) // nobody could break it yet: it is still ours
      } else {
        // It may have been broken and taken by another process: remove it only if it is ours.
        await this.breakLock(held.path, { text: held.text })
      }
    } catch (err) {
      // Left behind (e.g. the file system turned read-only): it names this process, and HELD no
      // longer lists it, so this process and the others see it as stale once it can be removed.
      if (!isCode(err, 'ENOENT')) debug('could not release lock %s: %O', held.path, err)
    }
  }

  /** Reads a lock and judges it: held, stale (its holder died or stopped renewing it), or gone. */
  async inspect(path: string): Promise<'gone' | LockSeen> {
    const seen = await readLock(path)
    if (!seen) return 'gone'
    const { text, st } = seen
    const info = parseLock(text)
    let stale: boolean
    if (Date.now() - st.mtimeMs > this.#lease)
      stale = true // not renewed: dead or hung, wherever it runs
    else if (!info || !info.local)
      stale = false // cannot see that process: its lease decides
    else if (info.pid === process.pid) stale = info.nonce !== PROCESS.nonce || !HELD.has(path)
    else stale = !isAlive(info.pid)
    return { stale, text, ino: st.ino }
  }

  /**
   * Removes a lock judged stale, and only that lock: it is renamed aside first and compared, so a
   * lock another process took in the meantime is put back rather than deleted. The temp file of
   * the dead holder's unfinished write, if any, goes with it.
   */
  async breakLock(path: string, seen: { text: string; ino?: number }): Promise<void> {
    const aside = `${path}.${unique()}.stale`
    try {
      await rename(path, aside)
    } catch (err) {
      if (isCode(err, 'ENOENT')) return // someone else broke or released it
      throw err
    }
    const now = await readLock(aside).catch(() => null)
    if (now && now.text === seen.text && (seen.ino === undefined || now.st.ino === seen.ino)) {
      if (seen.ino !== undefined) {
        debug('broke stale lock %s held by %s', path, now.text || '(not a symlink)')
        if (now.text) await unlinkQuiet(`${this.#tmp}/${basename(path)}.${now.text}`)
      }
    } else {
      // link() does not follow a symlink: the lock itself goes back, under its name.
      await link(aside, path).catch((err: unknown) =>
        debug('could not put back lock %s: %O', path, err),
      )
    }
    await unlinkQuiet(aside)
  }

  /** Stops renewing. Locks still held by unfinished calls then lapse after the lease. */
  close(): void {
    clearInterval(this.#timer)
  }

  #renew(): void {
    const now = Date.now()
    for (const held of this.#held) {
      const age = now - held.renewedAt
      // Too late to renew: the lock may be broken already, and the holder will give up.
      if (age < this.#lease / 4 || age >= this.#cutoff) continue
      fsLutimes(held.path, now / 1000, now / 1000).then(
        () => {
          if (this.#held.has(held) && now > held.renewedAt) held.renewedAt = now
        },
        (err: unknown) => debug('could not renew lock %s: %O', held.path, err),
      )
    }
  }
}

/** A lock's holder, as read back from its text. */
interface LockInfo {
  pid: number
  /** Same host and PID namespace as this process: `pid` can be checked here. */
  local: boolean
  nonce: string
}

// The nonce tells this process apart from an earlier one that had the same pid (a container
// restarted). It lives on globalThis so the ESM and CJS builds, loaded together, agree on it.
const PROCESS = processIdentity()

/**
 * Lock paths this process holds now, shared by every FileStore (and both builds) in the process.
 */
const HELD: Set<string> = ((globalThis as unknown as Record<symbol, Set<string> | undefined>)[
  Symbol.for('concord-session.file.held')
] ??= new Set<string>())

function processIdentity(): { place: string; nonce: string } {
  let ns = ''
  try {
    ns = readlinkSync('/proc/self/ns/pid') // two containers can share a host name and a volume
  } catch {
    // not Linux: host and pid alone
  }
  const slot = Symbol.for('concord-session.file.nonce')
  const g = globalThis as unknown as Record<symbol, string | undefined>
  g[slot] ??= randomBytes(8).toString('hex')
  // Host and PID namespace in 12 hex digits (48 bits), so a lock's text stays short.
  const place = createHash('sha256').update(`${hostname()}\0${ns}`).digest('hex').slice(0, 12)
  return { place, nonce: g[slot]!.slice(0, 12) }
}

let counter = 0
/**
 * Unique within this host: the process nonce and a counter (cheaper than random bytes per call).
 */
export function unique(): string {
  return `${PROCESS.nonce}${(++counter).toString(36)}`
}

/** The holder of a lock taken now, as the target of the lock symlink: 40-55 bytes, no slash. */
function lockText(): string {
  const at = Date.now().toString(36)
  const n = (++counter).toString(36)
  return `${LOCK_FORMAT}.${process.pid}.${PROCESS.place}.${PROCESS.nonce}.${at}.${n}`
}

/** A temp file of a write under a lock is named `<key>.<lock text>`; this gives the two back. */
export function tempOwner(name: string): { key: string; text: string } | undefined {
  const match = /^([0-9a-f]{64})\.(c1\.[0-9a-z.]+)$/.exec(name)
  return match ? { key: match[1]!, text: match[2]! } : undefined
}

/**
 * Reads a lock: a symlink's target, or (anything else in its place) a regular file's text. Null if
 * it is gone.
 */
export async function readLock(path: string): Promise<{ text: string; st: Stats } | null> {
  try {
    const st = await lstat(path)
    const text = st.isSymbolicLink() ? await readlink(path) : await readFile(path, 'utf8')
    return { text, st }
  } catch (err) {
    // EINVAL: a symlink replaced by a regular file in between; gone as far as this look goes.
    if (isCode(err, 'ENOENT') || isCode(err, 'EINVAL') || isCode(err, 'EISDIR')) return null
    throw err
  }
}

function parseLock(text: string): LockInfo | undefined {
  if (!text.startsWith(`${LOCK_FORMAT}.`)) return undefined
  const [, pid, place, nonce] = text.split('.')
  const info = { pid: Number(pid), local: place === PROCESS.place, nonce: nonce ?? '' }
  return Number.isInteger(info.pid) && info.pid > 0 ? info : undefined
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return isCode(err, 'EPERM') // exists, owned by someone else
  }
}
