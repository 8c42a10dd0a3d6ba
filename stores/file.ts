/**
 * concord-session/file: one JSON file per session, safe for several processes on one host.
 *
 * Layout under `dir` (all names are hex digests, so no input ever names a path):
 *
 *   sessions/<sha256(id)>.json          the record; the file's mtime IS the idle expiry
 *   locks/<sha256(id)>                  present while a process writes that session: a symlink
 *                                       whose target (never followed) names the holder
 *   users/<sha256(userId)>/<sha256(id)> per-user index entries (empty files)
 *   tmp/                                temp files, renamed into sessions/ when complete
 *   corrupt/                            unreadable session files, moved aside for an operator
 */
import { createHash, randomBytes } from 'node:crypto'
import type { Dir, Stats } from 'node:fs'
import * as fs from 'node:fs'
import { readlinkSync } from 'node:fs'
import { link, lstat, mkdir, open, opendir, readdir, readFile, readlink, rename, rmdir, stat, unlink } from 'node:fs/promises'
import { hostname } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import createDebug from 'debug'
import type { CookieOverrides, LoadOptions, SaveResult, SessionChange, SessionRecord, Store } from '../lib/store.js'
import { StoreError, isValidSessionId, touchedExpiry } from '../lib/store.js'
import { rejectUnknownKeys } from '../lib/check-options.js'

const debug = createDebug('concord-session:file')

/**
 * Options for {@link FileStore}. Only `dir` is required; bad values throw a TypeError at construction.
 *
 * @example
 * ```ts
 * const options: FileStoreOptions = { dir: '/var/lib/myapp/sessions', reapInterval: 600_000, lockTimeout: 2000 }
 * const store = new FileStore(options)
 * ```
 */
export interface FileStoreOptions {
  /** The directory that holds the sessions. Created (with mode 0700) if missing. */
  dir: string
  /** How often, in ms, expired sessions are deleted from disk. Default 300 000 (5 minutes). */
  reapInterval?: number
  /** How many files the reaper (and `count`, `listByUser`, `clear`) works on at once. Default 16. */
  concurrency?: number
  /** How long, in ms, a save waits for another process's lock before failing with a 503. Default 5000. */
  lockTimeout?: number
  /**
   * Age in ms after which a lock is abandoned even if its holder still runs (a hung process, or a
   * holder on another host). A lock whose holder process has died is broken at once. Default 30 000.
   */
  staleLockTimeout?: number
  /** fsync each session file before renaming it into place. Default true; false only for throwaway data. */
  fsync?: boolean
}

/** The JSON document in one session file. */
interface SessionFile {
  format: 1
  id: string
  version: number
  createdAt: number
  idleTimeout: number
  userId?: string
  cookie: CookieOverrides
  /** Each value is the JSON text the core gave us, embedded as a string so it round-trips exactly. */
  data: Record<string, string>
}

type Read =
  | { kind: 'missing' }
  | { kind: 'corrupt'; reason: string }
  | { kind: 'ok'; file: SessionFile; expiresAt: number }

/** A lock's holder, as read back from the lock (either format). */
interface LockInfo {
  pid: number
  /** Same host and PID namespace as this process: `pid` can be checked here. */
  local: boolean
  nonce: string
  at: number
}

const KEY = /^[0-9a-f]{64}$/
const SESSION_FILE = /^([0-9a-f]{64})\.json$/
const SUBDIRS = ['sessions', 'locks', 'users', 'tmp', 'corrupt'] as const
/**
 * A lock that is a regular file (made by an earlier version, which wrote its holder after creating
 * it) and is still empty this long after it was made lost its holder between create and write.
 * A symlink lock cannot be empty: it is made with its holder in one system call.
 */
const UNWRITTEN_LOCK_GRACE = 2000
/** Marks this version's lock text: `c1.<pid>.<host+ns digest>.<nonce>.<ms base 36>.<counter base 36>`. */
const LOCK_FORMAT = 'c1'

// A lock names its holder by host, PID namespace and pid, so another process on this host can tell
// at once whether the holder has died. The nonce tells this process apart from an earlier one that
// had the same pid (a container restarted). It lives on globalThis so the ESM and CJS builds,
// loaded together, agree on it.
const PROCESS = processIdentity()

/**
 * A session store that keeps one JSON file per session in a directory, for development or for
 * several processes on a single host (cluster workers, PM2). Not for several hosts: its locks
 * rely on one machine's view of processes and a local file system.
 *
 * - Writes are atomic: a temp file is written, fsynced and renamed into place, so a reader (or a
 *   process killed mid-write) never leaves or sees a torn file.
 * - Saves check the version under a per-session lock (a symlink made with one system call, whose
 *   target names the holder), which holds between processes; a lock left by a crashed process is
 *   broken at once.
 * - A read is one open; touch-on-load sets the file's mtime (the idle expiry) and never rewrites data.
 * - An unknown id costs one failed open and returns `null`: no retries, no logging.
 * - Every failure (read-only or missing directory, disk full) is a {@link StoreError} with status
 *   503 naming the directory; existing sessions are never lost to it.
 *
 * @example
 * ```ts
 * import session from 'concord-session'
 * import { FileStore } from 'concord-session/file'
 *
 * const store = new FileStore({ dir: './sessions' })
 * app.use(session(store, { secret: process.env.SESSION_SECRET }))
 * ```
 */
export class FileStore implements Store {
  /** The absolute directory this store keeps its files in. */
  readonly dir: string
  readonly #sessions: string
  readonly #locks: string
  readonly #users: string
  readonly #tmp: string
  readonly #corrupt: string
  readonly #concurrency: number
  readonly #lockTimeout: number
  readonly #staleLockTimeout: number
  readonly #fsync: boolean
  readonly #timer: NodeJS.Timeout
  /** In-process queue per session key, so this process's own saves never spin on the lock file. */
  readonly #queues = new Map<string, Promise<void>>()
  #ready: Promise<void> | undefined
  #reaping: Promise<number> | undefined

  constructor(options: FileStoreOptions) {
    if (options === null || typeof options !== 'object') {
      throw new TypeError("FileStore: pass an options object with a dir, e.g. new FileStore({ dir: './sessions' })")
    }
    rejectUnknownKeys('FileStore', options, ['dir', 'reapInterval', 'concurrency', 'lockTimeout', 'staleLockTimeout', 'fsync'], {
      ttl: "that is session-file-store's option; a session's lifetime follows its cookie here: set session({ cookie: { maxAge } }), and idleTimeout for browser-session cookies",
      path: "that is session-file-store's option; pass the directory as dir",
      retries: "that is session-file-store's option; an unknown id is one failed open, never retried",
    })
    const {
      dir,
      reapInterval = 300_000,
      concurrency = 16,
      lockTimeout = 5000,
      staleLockTimeout = 30_000,
      fsync = true,
    } = options
    if (typeof dir !== 'string' || dir.length === 0 || dir.includes('\0')) {
      throw new TypeError("FileStore: dir must be a non-empty path to the sessions directory, e.g. new FileStore({ dir: './sessions' })")
    }
    positive('reapInterval', reapInterval)
    positive('lockTimeout', lockTimeout)
    positive('staleLockTimeout', staleLockTimeout)
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1024) {
      throw new TypeError(`FileStore: concurrency must be an integer from 1 to 1024, got ${String(concurrency)}`)
    }
    if (typeof fsync !== 'boolean') {
      throw new TypeError(`FileStore: fsync must be true or false, got ${String(fsync)}`)
    }

    // Resolved once, so a later process.chdir() cannot move the store.
    this.dir = resolve(dir)
    this.#sessions = join(this.dir, 'sessions')
    this.#locks = join(this.dir, 'locks')
    this.#users = join(this.dir, 'users')
    this.#tmp = join(this.dir, 'tmp')
    this.#corrupt = join(this.dir, 'corrupt')
    this.#concurrency = concurrency
    this.#lockTimeout = lockTimeout
    this.#staleLockTimeout = staleLockTimeout
    this.#fsync = fsync
    this.#timer = setInterval(() => {
      this.reap().catch((err: unknown) => debug('reap of %s failed: %O', this.dir, err))
    }, reapInterval)
    this.#timer.unref()
  }

  async load(id: string, options: LoadOptions = {}): Promise<SessionRecord | null> {
    if (!isValidSessionId(id)) return null
    const key = keyOf(id)
    let fd: number
    try {
      fd = await fsOpen(this.#sessionPath(key), 'r')
    } catch (err) {
      if (isCode(err, 'ENOENT')) return null // unknown id: one failed open, nothing else
      throw this.#fail('read a session', err)
    }

    let record: SessionRecord | null = null
    let cleanup: 'expired' | 'corrupt' | undefined
    let reason = ''
    try {
      const read = await readOpen(fd, id)
      if (read.kind !== 'ok') {
        cleanup = 'corrupt'
        reason = read.kind === 'corrupt' ? read.reason : 'empty'
      } else {
        const now = Date.now()
        let expiresAt = read.expiresAt
        if (expiresAt <= now) {
          cleanup = 'expired'
        } else if (options.touchAt !== undefined) {
          const touched = touchedExpiry(read.file, options.touchAt, options.absoluteTimeout)
          if (touched <= now) {
            // Past its absolute timeout: mark this very inode expired (a save that replaced the
            // file meanwhile is not affected), then remove it below.
            cleanup = 'expired'
            await fsFutimes(fd, now / 1000, touched / 1000).catch((err: unknown) => debug('could not expire %s: %O', key, err))
          } else if (touched !== expiresAt) {
            // The touch is metadata only: the data is never rewritten without the version check.
            await fsFutimes(fd, now / 1000, touched / 1000)
            expiresAt = touched
          }
        }
        if (cleanup === undefined) record = toRecord(read.file, expiresAt)
      }
    } catch (err) {
      throw this.#fail('read a session', err)
    } finally {
      await fsClose(fd).catch(ignore)
    }

    if (cleanup !== undefined) {
      // Best effort: the answer is null either way, and the reaper retries what fails here.
      await this.#cleanup(key, cleanup, reason).catch((err: unknown) => debug('could not clean up %s: %O', key, err))
    }
    return record
  }

  async save(id: string, change: SessionChange): Promise<SaveResult> {
    if (!isValidSessionId(id)) throw new TypeError(`FileStore: invalid session id ${JSON.stringify(String(id).slice(0, 64))}`)
    const key = keyOf(id)
    return this.#write('save a session', key, async () => {
      const read = await this.#read(key, id)
      const now = Date.now()
      const current = read.kind === 'ok' && read.expiresAt > now ? read : undefined

      if (change.expectedVersion === null) {
        if (current) return { ok: false, reason: 'conflict', current: toRecord(current.file, current.expiresAt) }
      } else {
        if (!current) {
          await this.#removeLocked(key, read, 'was gone at save')
          return { ok: false, reason: 'gone' }
        }
        if (current.file.version !== change.expectedVersion) {
          return { ok: false, reason: 'conflict', current: toRecord(current.file, current.expiresAt) }
        }
      }
      if (read.kind === 'corrupt') await this.#moveAside(key, read.reason)

      // A null prototype keeps a key such as "__proto__" an ordinary key.
      const data: Record<string, string> = Object.create(null)
      if (current) for (const k of Object.keys(current.file.data)) data[k] = current.file.data[k]!
      for (const k of change.unset) delete data[k]
      for (const k of Object.keys(change.set)) data[k] = change.set[k]!
      const next: SessionFile = {
        format: 1,
        id,
        version: current ? current.file.version + 1 : 1,
        createdAt: current ? current.file.createdAt : change.createdAt,
        idleTimeout: change.idleTimeout,
        cookie: change.cookie,
        data,
      }
      const userId = change.userId ?? undefined
      if (userId !== undefined) next.userId = userId

      // Index entry first, file second, old entry last: a crash can leave an extra entry (pruned
      // when read), never a session missing from its user's index.
      const before = read.kind === 'ok' ? read.file.userId : undefined
      if (userId !== undefined && userId !== before) await this.#addEntry(userId, key)
      await this.#writeFile(key, JSON.stringify(next), change.expiresAt)
      if (before !== undefined && before !== userId) await this.#unlinkEntry(before, key)
      return { ok: true, version: next.version }
    })
  }

  async touch(id: string, expiresAt: number): Promise<void> {
    if (!isValidSessionId(id)) return
    let fd: number
    try {
      fd = await fsOpen(this.#sessionPath(keyOf(id)), 'r')
    } catch (err) {
      if (isCode(err, 'ENOENT')) return
      throw this.#fail('touch a session', err)
    }
    try {
      // An expired session stays expired: a touch must not bring it back.
      const { mtimeMs } = await fsFstat(fd)
      if (Math.round(mtimeMs) > Date.now()) await fsFutimes(fd, Date.now() / 1000, expiresAt / 1000)
    } catch (err) {
      throw this.#fail('touch a session', err)
    } finally {
      await fsClose(fd).catch(ignore)
    }
  }

  async destroy(id: string): Promise<void> {
    if (!isValidSessionId(id)) return
    const key = keyOf(id)
    await this.#write('destroy a session', key, async () => {
      await this.#removeLocked(key, await this.#read(key, id), 'destroyed')
    })
  }

  async listByUser(userId: string): Promise<string[]> {
    const found: Array<{ id: string; createdAt: number }> = []
    await this.#guard('list sessions by user', async () => {
      await forEachLimited(await this.#entries(userId), this.#concurrency, async (key) => {
        const read = await this.#read(key)
        if (read.kind === 'ok' && read.file.userId === userId) {
          if (read.expiresAt > Date.now()) found.push({ id: read.file.id, createdAt: read.file.createdAt })
        } else if (read.kind === 'missing' || read.kind === 'ok') {
          await this.#pruneEntry(userId, key)
        }
      })
    })
    return found.sort((a, b) => a.createdAt - b.createdAt).map((s) => s.id)
  }

  async destroyByUser(userId: string): Promise<number> {
    let destroyed = 0
    await this.#guard('destroy sessions by user', async () => {
      const keys = await this.#entries(userId)
      await forEachLimited(keys, this.#concurrency, async (key) => {
        await this.#write('destroy a session', key, async () => {
          const read = await this.#read(key)
          if (read.kind === 'ok' && read.file.userId !== userId) return this.#unlinkEntry(userId, key) // moved to another user
          if (read.kind === 'ok' && read.expiresAt > Date.now()) destroyed++
          await this.#removeLocked(key, read, 'destroyed with its user')
          await this.#unlinkEntry(userId, key)
        })
      })
      await rmdirQuiet(this.#userDir(userId))
    })
    return destroyed
  }

  async count(): Promise<number> {
    let live = 0
    await this.#guard('count sessions', async () => {
      const now = Date.now()
      await this.#eachSessionExpiry(async (_key, expiresAt) => {
        if (expiresAt > now) live++
      })
    })
    return live
  }

  async clear(): Promise<void> {
    await this.#guard('clear sessions', async () => {
      await this.#eachSessionFile((key) =>
        this.#write('clear a session', key, async () => this.#removeLocked(key, await this.#read(key), 'cleared')),
      )
      // What remains in users/ points at sessions that are gone now; prune it under the same locks.
      for (const user of await readdirOrEmpty(this.#users)) {
        if (!KEY.test(user)) continue
        const dir = join(this.#users, user)
        await forEachLimited((await readdirOrEmpty(dir)).filter((k) => KEY.test(k)), this.#concurrency, (key) =>
          this.#write('clear a session', key, async () => {
            if ((await this.#read(key)).kind === 'missing') await unlinkQuiet(join(dir, key))
          }),
        )
        await rmdirQuiet(dir)
      }
    })
  }

  async close(): Promise<void> {
    clearInterval(this.#timer)
    await this.#reaping?.catch(() => undefined)
  }

  /**
   * Deletes expired sessions (and their index entries), temp files left by a crashed writer, and
   * stale locks. Runs on an unref'd timer every `reapInterval`; callable directly. It streams the
   * directory and works on at most `concurrency` files at once, so it never runs out of file
   * descriptors however many sessions there are. Resolves to the number of sessions deleted.
   *
   * @example
   * ```ts
   * const removed = await store.reap()
   * ```
   */
  reap(): Promise<number> {
    // One reap at a time per store; a tick that finds one running joins it.
    this.#reaping ??= this.#reap().finally(() => {
      this.#reaping = undefined
    })
    return this.#reaping
  }

  async #reap(): Promise<number> {
    let removed = 0
    await this.#guard('reap sessions', async () => {
      const now = Date.now()
      await this.#eachSessionExpiry(async (key, expiresAt) => {
        if (expiresAt > now) return
        try {
          if (await this.#removeIfExpired(key)) removed++
        } catch (err) {
          // A session held by a live process past lockTimeout is skipped until the next reap.
          if (!(err instanceof StoreError && err.code === 'ETIMEDOUT')) throw err
        }
      })
      // A temp file's ctime is when its writer last worked on it; writes take milliseconds.
      await forEachLimited(await readdirOrEmpty(this.#tmp), this.#concurrency, async (name) => {
        const st = await statOrNull(join(this.#tmp, name))
        if (st && now - st.ctimeMs > this.#staleLockTimeout) await unlinkQuiet(join(this.#tmp, name))
      })
      // Index directories are left when they empty (removing them on every unlink costs a failed
      // rmdir each time); they go here, and a save that needs one makes it again.
      await forEachLimited(await readdirOrEmpty(this.#users), this.#concurrency, (user) => rmdirQuiet(join(this.#users, user)))
      await forEachLimited(await readdirOrEmpty(this.#locks), this.#concurrency, async (name) => {
        const path = join(this.#locks, name)
        if (KEY.test(name)) {
          const seen = await this.#inspectLock(path)
          if (seen !== 'gone' && seen.stale) await this.#breakLock(path, seen)
        } else {
          // A lock moved aside by a breaker that crashed before deleting it (lstat: a symlink lock
          // points nowhere).
          const st = await lstatOrNull(path)
          if (st && now - st.ctimeMs > this.#staleLockTimeout) await unlinkQuiet(path)
        }
      })
    })
    if (removed > 0) debug('reaped %d expired sessions in %s', removed, this.dir)
    return removed
  }

  // ---- reading and writing session files ----

  #sessionPath(key: string): string {
    return join(this.#sessions, `${key}.json`)
  }

  #userDir(userId: string): string {
    return join(this.#users, keyOf(userId))
  }

  /** Reads a session file by key; `id`, when known, must match the id inside. Never throws ENOENT. */
  async #read(key: string, id?: string): Promise<Read> {
    let fd: number
    try {
      fd = await fsOpen(this.#sessionPath(key), 'r')
    } catch (err) {
      if (isCode(err, 'ENOENT')) return { kind: 'missing' }
      throw err
    }
    try {
      const read = await readOpen(fd, id)
      if (read.kind === 'ok' && id === undefined && keyOf(read.file.id) !== key) {
        return { kind: 'corrupt', reason: 'the id inside does not match the file name' }
      }
      return read
    } finally {
      await fsClose(fd).catch(ignore)
    }
  }

  /** Writes a whole session file atomically: temp file, (fsync), rename. Its mtime is the expiry. */
  async #writeFile(key: string, text: string, expiresAt: number): Promise<void> {
    const temp = join(this.#tmp, `${key}.${process.pid}.${unique()}`)
    let fd: number | undefined
    try {
      fd = await fsOpen(temp, 'wx', 0o600)
      await fsWriteAll(fd, Buffer.from(text, 'utf8'))
      // After the last write, or the write would move the mtime again.
      await fsFutimes(fd, Date.now() / 1000, expiresAt / 1000)
      // Without this, a power cut after the rename could leave the name on an empty inode.
      // The directory is not fsynced: a crash may then lose this last save, but the name
      // always points at a whole file, old or new.
      if (this.#fsync) await fsFsync(fd)
      const closing = fd
      fd = undefined
      await fsClose(closing)
      await fsRename(temp, this.#sessionPath(key))
    } catch (err) {
      if (fd !== undefined) fs.close(fd, ignore)
      await unlinkQuiet(temp)
      throw err
    }
  }

  /** Deletes what `read` found, under the caller's lock: the file and its index entry. */
  async #removeLocked(key: string, read: Read, why: string): Promise<void> {
    if (read.kind === 'missing') return
    if (read.kind === 'corrupt') return this.#moveAside(key, read.reason)
    await unlinkQuiet(this.#sessionPath(key))
    if (read.file.userId !== undefined) await this.#unlinkEntry(read.file.userId, key)
    if (why !== 'destroyed') debug('removed session %s (%s)', key, why)
  }

  /** Moves a corrupt file to corrupt/ for an operator to inspect, instead of deleting it. */
  async #moveAside(key: string, reason: string): Promise<void> {
    const source = this.#sessionPath(key)
    // link() fails with EEXIST where rename() would replace: two files of one session moved aside
    // in the same millisecond both stay (the later one under the next free millisecond).
    let dest: string
    for (let at = Date.now(); ; at++) {
      dest = join(this.#corrupt, `${key}.${at}.json`)
      try {
        await link(source, dest)
        break
      } catch (err) {
        if (isCode(err, 'ENOENT')) return
        if (!isCode(err, 'EEXIST')) throw err
      }
    }
    await unlinkQuiet(source)
    debug('session file %s is corrupt (%s): moved it to %s', source, reason, dest)
  }

  /** Removes an expired or corrupt file that `load` found, once its lock is held and it is checked again. */
  async #cleanup(key: string, what: 'expired' | 'corrupt', reason: string): Promise<void> {
    if (what === 'expired') {
      await this.#removeIfExpired(key)
      return
    }
    await this.#write('move a corrupt session aside', key, async () => {
      const again = await this.#read(key)
      if (again.kind === 'corrupt') await this.#moveAside(key, reason)
    })
  }

  async #removeIfExpired(key: string): Promise<boolean> {
    return this.#write('remove an expired session', key, async () => {
      const read = await this.#read(key)
      if (read.kind === 'ok' && read.expiresAt > Date.now()) return false // saved or touched meanwhile
      await this.#removeLocked(key, read, 'expired')
      return read.kind === 'ok'
    })
  }

  // ---- the per-user index ----

  /** Session keys in the user's index directory. */
  async #entries(userId: string): Promise<string[]> {
    return (await readdirOrEmpty(this.#userDir(userId))).filter((name) => KEY.test(name))
  }

  async #addEntry(userId: string, key: string): Promise<void> {
    const dir = this.#userDir(userId)
    // Another process may remove the user's directory when it empties; make it again and retry.
    for (let attempt = 0; ; attempt++) {
      await makeDir(dir)
      try {
        await (await open(join(dir, key), 'a', 0o600)).close()
        return
      } catch (err) {
        if (!isCode(err, 'ENOENT') || attempt >= 5) throw err
      }
    }
  }

  async #unlinkEntry(userId: string, key: string): Promise<void> {
    await unlinkQuiet(join(this.#userDir(userId), key))
  }

  /** Drops an index entry whose session is gone or has another owner, checked under the session's lock. */
  async #pruneEntry(userId: string, key: string): Promise<void> {
    await this.#write('prune the user index', key, async () => {
      const read = await this.#read(key)
      if (read.kind === 'missing' || (read.kind === 'ok' && read.file.userId !== userId)) await this.#unlinkEntry(userId, key)
    })
  }

  // ---- locking ----

  /**
   * Runs `fn` holding the session's lock, in this process (a queue) and between processes (the lock
   * file). Makes the directories on first use, and again if they vanished; maps errors to StoreError.
   */
  async #write<T>(what: string, key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(key)
    let done!: () => void
    const mine = new Promise<void>((resolve) => (done = resolve))
    const tail = previous ? previous.then(() => mine) : mine
    this.#queues.set(key, tail)
    try {
      if (previous) await previous
      for (let attempt = 0; ; attempt++) {
        try {
          await this.#setup()
          await this.#acquire(key)
          try {
            return await fn()
          } finally {
            await this.#release(key)
          }
        } catch (err) {
          // ENOENT here is a directory removed under us (the session file's own absence never
          // throws): make the layout again once, before the commit point, and redo the operation.
          if (isCode(err, 'ENOENT') && attempt === 0) {
            this.#ready = undefined
            continue
          }
          throw this.#fail(what, err)
        }
      }
    } finally {
      done()
      if (this.#queues.get(key) === tail) this.#queues.delete(key)
    }
  }

  async #acquire(key: string): Promise<void> {
    const path = join(this.#locks, key)
    const deadline = Date.now() + this.#lockTimeout
    for (let attempt = 0; ; attempt++) {
      try {
        // One system call makes the lock with its holder inside: symlink() fails with EEXIST if
        // the name exists, like open(O_CREAT | O_EXCL), and its target is the holder's name. The
        // target is under 60 bytes, so ext4 keeps it in the inode (no data block to allocate or free).
        await fsSymlink(lockText(), path)
      } catch (err) {
        if (!isCode(err, 'EEXIST')) throw err
        const seen = await this.#inspectLock(path)
        if (seen !== 'gone' && seen.stale) {
          await this.#breakLock(path, seen)
        } else if (seen !== 'gone') {
          if (Date.now() >= deadline) {
            throw new StoreError(
              `FileStore: timed out after ${this.#lockTimeout} ms waiting for another process's lock on a session in ${this.dir}`,
              { code: 'ETIMEDOUT', cause: err },
            )
          }
          // Holds last milliseconds; back off with jitter so waiting processes do not march in step.
          await sleep(Math.min(50, 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2))
        }
        continue
      }
      HELD.add(path)
      return
    }
  }

  async #release(key: string): Promise<void> {
    const path = join(this.#locks, key)
    try {
      await fsUnlink(path)
    } catch (err) {
      // Left behind (e.g. the file system turned read-only): it names this process, and HELD no
      // longer lists it, so this process and the others see it as stale once it can be removed.
      if (!isCode(err, 'ENOENT')) debug('could not release lock %s: %O', path, err)
    } finally {
      HELD.delete(path)
    }
  }

  /** Reads a lock file and judges it: held, stale (its holder died or it is older than staleLockTimeout), or gone. */
  async #inspectLock(path: string): Promise<'gone' | { stale: boolean; text: string; ino: number }> {
    const seen = await readLock(path)
    if (!seen) return 'gone'
    const { text, st } = seen
    const info = parseLock(text)
    const now = Date.now()
    let stale: boolean
    if (!info) stale = now - st.mtimeMs > Math.min(UNWRITTEN_LOCK_GRACE, this.#staleLockTimeout)
    else if (now - info.at > this.#staleLockTimeout) stale = true
    else if (!info.local) stale = false // cannot see that process
    else if (info.pid === process.pid) stale = info.nonce !== PROCESS.nonce || !HELD.has(path)
    else stale = !isAlive(info.pid)
    return { stale, text, ino: st.ino }
  }

  /**
   * Removes a lock judged stale, and only that lock: it is renamed aside first and compared, so a
   * lock another process took in the meantime is put back rather than deleted.
   */
  async #breakLock(path: string, seen: { text: string; ino: number }): Promise<void> {
    const aside = `${path}.${unique()}.stale`
    try {
      await rename(path, aside)
    } catch (err) {
      if (isCode(err, 'ENOENT')) return // someone else broke or released it
      throw err
    }
    const now = await readLock(aside).catch(() => null)
    if (now && now.text === seen.text && now.st.ino === seen.ino) {
      debug('broke stale lock %s held by %s', path, now.text || '(nothing written)')
    } else {
      // link() does not follow a symlink: the lock itself goes back, under its name.
      await link(aside, path).catch((err: unknown) => debug('could not put back lock %s: %O', path, err))
    }
    await unlinkQuiet(aside)
  }

  // ---- plumbing ----

  /** Makes the directory layout once (again after a directory was removed). */
  #setup(): Promise<void> {
    this.#ready ??= (async () => {
      await makeDir(this.dir)
      for (const sub of SUBDIRS) await makeDir(join(this.dir, sub))
    })().catch((err: unknown) => {
      this.#ready = undefined
      throw err
    })
    return this.#ready
  }

  async #eachSessionFile(fn: (key: string) => Promise<unknown>): Promise<void> {
    let dir: Dir
    try {
      dir = await opendir(this.#sessions, { bufferSize: 64 })
    } catch (err) {
      if (isCode(err, 'ENOENT')) return
      throw err
    }
    // Streamed, not listed: memory stays flat however many sessions there are.
    await forEachLimited(dir, this.#concurrency, async (entry) => {
      const match = SESSION_FILE.exec(entry.name)
      if (match) await fn(match[1]!)
    })
  }

  /** Like #eachSessionFile, with each session's expiry (its mtime) from one stat; no file is opened. */
  async #eachSessionExpiry(fn: (key: string, expiresAt: number) => Promise<unknown>): Promise<void> {
    await this.#eachSessionFile(async (key) => {
      const st = await statOrNull(this.#sessionPath(key))
      if (st) await fn(key, Math.round(st.mtimeMs))
    })
  }

  async #guard(what: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn()
    } catch (err) {
      throw this.#fail(what, err)
    }
  }

  #fail(what: string, err: unknown): StoreError {
    if (err instanceof StoreError) return err
    const code = (err as NodeJS.ErrnoException | undefined)?.code
    const why = (code && REASONS[code]) ?? (err instanceof Error ? err.message : String(err))
    return new StoreError(`FileStore: could not ${what} in ${this.dir}: ${why}`, {
      cause: err,
      code: code === 'ENOSPC' || code === 'EDQUOT' ? 'EFULL' : 'ESTORE',
    })
  }
}

const REASONS: Record<string, string> = {
  ENOENT: 'the directory is missing and could not be made (ENOENT)',
  ENOTDIR: 'a part of the path is not a directory (ENOTDIR)',
  EROFS: 'the file system is read-only (EROFS)',
  EACCES: 'permission denied (EACCES)',
  EPERM: 'operation not permitted (EPERM)',
  ENOSPC: 'no space left on the device (ENOSPC)',
  EDQUOT: 'disk quota exceeded (EDQUOT)',
  EMFILE: 'too many open files in this process (EMFILE)',
  ENFILE: 'too many open files on this system (ENFILE)',
  EIO: 'input/output error (EIO)',
}

/** Reads the whole file behind `fd` and checks its shape. The size comes from fstat: a file is never modified after its rename. */
async function readOpen(fd: number, id: string | undefined): Promise<Read> {
  const st = await fsFstat(fd)
  const buf = Buffer.allocUnsafe(st.size)
  let filled = 0
  while (filled < st.size) {
    const bytesRead = await fsRead(fd, buf, filled, st.size - filled, filled)
    if (bytesRead === 0) break
    filled += bytesRead
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(buf.toString('utf8', 0, filled))
  } catch (err) {
    return { kind: 'corrupt', reason: `not JSON: ${(err as Error).message}` }
  }
  const problem = checkFile(parsed)
  if (problem) return { kind: 'corrupt', reason: problem }
  const file = parsed as SessionFile
  if (id !== undefined && file.id !== id) return { kind: 'corrupt', reason: 'the id inside does not match the file name' }
  // utimes stores the expiry with sub-ms precision loss; rounding gives back the exact ms.
  return { kind: 'ok', file, expiresAt: Math.round(st.mtimeMs) }
}

// ---- callback fs on the hot paths ----
// The callback API costs about half of fs/promises' FileHandle per call (no FileHandle object,
// no close tracking); these wrappers are the only promises made per system call.

function ignore(): void {}

function fsOpen(path: string, flags: string, mode = 0o666): Promise<number> {
  return new Promise((resolve, reject) => fs.open(path, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd))))
}

function fsFstat(fd: number): Promise<Stats> {
  return new Promise((resolve, reject) => fs.fstat(fd, (err, st) => (err ? reject(err) : resolve(st))))
}

function fsRead(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))))
}

function fsWrite(fd: number, buf: Buffer, offset: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.write(fd, buf, offset, buf.length - offset, null, (err, n) => (err ? reject(err) : resolve(n))),
  )
}

async function fsWriteAll(fd: number, buf: Buffer): Promise<void> {
  for (let done = 0; done < buf.length; ) done += await fsWrite(fd, buf, done)
}

function fsFutimes(fd: number, atime: number, mtime: number): Promise<void> {
  return new Promise((resolve, reject) => fs.futimes(fd, atime, mtime, (err) => (err ? reject(err) : resolve())))
}

function fsFsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())))
}

function fsClose(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())))
}

function fsSymlink(target: string, path: string): Promise<void> {
  return new Promise((resolve, reject) => fs.symlink(target, path, (err) => (err ? reject(err) : resolve())))
}

function fsUnlink(path: string): Promise<void> {
  return new Promise((resolve, reject) => fs.unlink(path, (err) => (err ? reject(err) : resolve())))
}

function fsRename(from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => fs.rename(from, to, (err) => (err ? reject(err) : resolve())))
}

function checkFile(value: unknown): string | undefined {
  if (!isObject(value)) return 'not an object'
  if (value.format !== 1) return 'unknown format'
  if (typeof value.id !== 'string' || !isValidSessionId(value.id)) return 'bad id'
  if (!Number.isSafeInteger(value.version) || (value.version as number) < 1) return 'bad version'
  if (!Number.isFinite(value.createdAt) || !Number.isFinite(value.idleTimeout)) return 'bad times'
  if (value.userId !== undefined && typeof value.userId !== 'string') return 'bad userId'
  if (!isObject(value.cookie)) return 'bad cookie'
  if (!isObject(value.data)) return 'bad data'
  for (const k of Object.keys(value.data)) if (typeof value.data[k] !== 'string') return `bad data key ${JSON.stringify(k)}`
  return undefined
}

function toRecord(file: SessionFile, expiresAt: number): SessionRecord {
  const record: SessionRecord = {
    data: file.data,
    cookie: file.cookie,
    createdAt: file.createdAt,
    expiresAt,
    idleTimeout: file.idleTimeout,
    version: file.version,
  }
  if (file.userId !== undefined) record.userId = file.userId
  return record
}

/** File names are digests: fixed length, hex only, whatever the id or user id holds. */
function keyOf(value: string): string {
  return createHash('sha256').update(value).digest('hex')
}

function processIdentity(): { host: string; ns: string; place: string; nonce: string } {
  let ns = ''
  try {
    ns = readlinkSync('/proc/self/ns/pid') // two containers can share a host name and a volume
  } catch {
    // not Linux: host and pid alone
  }
  const slot = Symbol.for('concord-session.file.nonce')
  const g = globalThis as unknown as Record<symbol, string | undefined>
  g[slot] ??= randomBytes(8).toString('hex')
  const host = hostname()
  // Host and PID namespace in 12 hex digits (48 bits), so a lock's text stays short.
  const place = createHash('sha256').update(`${host}\0${ns}`).digest('hex').slice(0, 12)
  return { host, ns, place, nonce: g[slot]!.slice(0, 12) }
}

/** Lock paths this process holds now, shared by every FileStore (and both builds) in the process. */
const HELD: Set<string> = ((globalThis as unknown as Record<symbol, Set<string> | undefined>)[
  Symbol.for('concord-session.file.held')
] ??= new Set<string>())

let counter = 0
/** Unique within this host: the process nonce and a counter (cheaper than random bytes per save). */
function unique(): string {
  return `${PROCESS.nonce}${(++counter).toString(36)}`
}

/** The holder of a lock taken now, as the target of the lock symlink: 40-55 bytes, no slash. */
function lockText(): string {
  return `${LOCK_FORMAT}.${process.pid}.${PROCESS.place}.${PROCESS.nonce}.${Date.now().toString(36)}.${(++counter).toString(36)}`
}

/** Reads a lock: a symlink's target, or (a lock of an earlier version) a regular file's text. Null if it is gone. */
async function readLock(path: string): Promise<{ text: string; st: Stats } | null> {
  try {
    const st = await lstat(path)
    const text = st.isSymbolicLink() ? await readlink(path) : await readFile(path, 'utf8')
    return { text, st }
  } catch (err) {
    // EINVAL: a symlink replaced by a regular file in between; gone as far as this look goes.
    if (isCode(err, 'ENOENT') || isCode(err, 'EINVAL')) return null
    throw err
  }
}

function parseLock(text: string): LockInfo | undefined {
  if (text.startsWith(`${LOCK_FORMAT}.`)) {
    const [, pid, place, nonce, at] = text.split('.')
    const info = { pid: Number(pid), local: place === PROCESS.place, nonce: nonce ?? '', at: parseInt(at ?? '', 36) }
    return Number.isInteger(info.pid) && info.pid > 0 && Number.isFinite(info.at) ? info : undefined
  }
  // An earlier version's lock file: {"pid", "host", "ns", "nonce", "at", "token"} as JSON.
  try {
    const info = JSON.parse(text) as Record<string, unknown>
    if (!isObject(info) || !Number.isInteger(info.pid) || !Number.isFinite(info.at)) return undefined
    const local = info.host === PROCESS.host && info.ns === PROCESS.ns
    return { pid: info.pid as number, local, nonce: String(info.nonce), at: info.at as number }
  } catch {
    return undefined
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return isCode(err, 'EPERM') // exists, owned by someone else
  }
}

/** Runs `fn` on each item with at most `limit` in flight. An async iterator is pulled by the workers in turn. */
async function forEachLimited<T>(items: Iterable<T> | AsyncIterable<T>, limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  const it: Iterator<T> | AsyncIterator<T> =
    Symbol.asyncIterator in items ? (items as AsyncIterable<T>)[Symbol.asyncIterator]() : (items as Iterable<T>)[Symbol.iterator]()
  let failed = false
  let failure: unknown
  const worker = async (): Promise<void> => {
    while (!failed) {
      const next = await it.next()
      if (next.done) return
      try {
        await fn(next.value)
      } catch (err) {
        if (!failed) failure = err
        failed = true
      }
    }
  }
  await Promise.all(Array.from({ length: limit }, worker))
  if (failed) {
    await it.return?.() // closes a directory stream that was not read to the end
    throw failure
  }
}

/**
 * mkdir -p, by hand: Node's recursive mkdir reports ENOENT where the real cause is EROFS or
 * EACCES, and the 503's message should say which.
 */
async function makeDir(path: string): Promise<void> {
  try {
    await mkdir(path, { mode: 0o700 })
  } catch (err) {
    if (isCode(err, 'EEXIST')) return
    if (!isCode(err, 'ENOENT') || dirname(path) === path) throw err
    await makeDir(dirname(path))
    await makeDir(path)
  }
}

async function readdirOrEmpty(path: string): Promise<string[]> {
  try {
    return await readdir(path)
  } catch (err) {
    if (isCode(err, 'ENOENT')) return []
    throw err
  }
}

async function lstatOrNull(path: string): Promise<Stats | null> {
  try {
    return await lstat(path)
  } catch (err) {
    if (isCode(err, 'ENOENT')) return null
    throw err
  }
}

async function statOrNull(path: string): Promise<Stats | null> {
  try {
    return await stat(path)
  } catch (err) {
    if (isCode(err, 'ENOENT')) return null
    throw err
  }
}

async function unlinkQuiet(path: string): Promise<void> {
  try {
    await unlink(path)
  } catch (err) {
    if (!isCode(err, 'ENOENT')) throw err
  }
}

/** Removes a directory if it is empty; a directory still in use stays. */
async function rmdirQuiet(path: string): Promise<void> {
  try {
    await rmdir(path)
  } catch (err) {
    if (!isCode(err, 'ENOENT') && !isCode(err, 'ENOTEMPTY') && !isCode(err, 'EEXIST')) throw err
  }
}

function isCode(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === code
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function positive(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`FileStore: ${name} must be a positive number of ms, got ${String(value)}`)
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
