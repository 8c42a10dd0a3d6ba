/**
 * FileStore: one JSON file per session, safe for several processes on one host.
 *
 * Layout under `dir` (all names are hex digests, so no input ever names a path):
 *
 *   sessions/<sha256(id)>.json          the record; the file's mtime IS the idle expiry
 *   locks/<sha256(id)>                  present while a process writes that session (see lock.ts)
 *   users/<sha256(userId)>/<sha256(id)> per-user index entries (empty files; see users.ts)
 *   tmp/<sha256(id)>.<lock text>        a write in progress, renamed into sessions/ when complete
 *   corrupt/                            unreadable session files, moved aside for an operator
 */
import type { Stats } from 'node:fs'
import * as fs from 'node:fs'
import { link } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import createDebug from 'debug'
import { KeyedQueue } from '../../lib/keyed-queue.js'
import type { LoadOptions, SaveResult, SessionChange, SessionRecord, Store } from '../../lib/store.js'
import { StoreError, isValidSessionId, touchedExpiry } from '../../lib/store.js'
import type { Read, SessionFile, Slot } from './format.js'
import { KEY, SESSION_FILE, Slots, keyOf, readOpen, seenAt, stillSeen, toRecord } from './format.js'
import * as f from './fs.js'
import type { Held } from './lock.js'
import { Locks } from './lock.js'
import type { FileStoreOptions } from './options.js'
import { fileStoreSettings } from './options.js'
import { reap, sweepTemp } from './reaper.js'
import { UserIndex } from './users.js'

const debug = createDebug('concord-session:file')
const SUBDIRS = ['sessions', 'locks', 'users', 'tmp', 'corrupt'] as const

/**
 * A session store that keeps one JSON file per session in a directory, for development or for
 * several processes on a single host (cluster workers, PM2, containers sharing a volume). Not for
 * several hosts: it relies on one machine's clock and a local file system.
 *
 * - Writes are atomic: a temp file is written, fsynced and renamed into place, so a reader (or a
 *   process killed mid-write) never leaves or sees a torn file.
 * - Saves check the version under a per-session lock (a symlink made with one system call, whose
 *   target names the holder), which holds between processes. The lock is a lease the holder renews:
 *   a crashed holder blocks its session for at most `staleLockTimeout` (one on this host and PID
 *   namespace not at all), and a holder that lost its lease applies nothing.
 * - A save with a `deadline` is applied before it or not at all: the check is made under the lock,
 *   just before the rename.
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
  readonly #dirs: { sessions: string; locks: string; users: string; tmp: string; corrupt: string }
  readonly #concurrency: number
  readonly #lease: number
  readonly #fsync: boolean
  readonly #timer: NodeJS.Timeout
  readonly #locks: Locks
  readonly #users: UserIndex
  readonly #slots: Slots
  /** This process's own operations on one session run one at a time, so they never spin on the lock file. */
  readonly #queue = new KeyedQueue()
  #ready: Promise<void> | undefined
  #reaping: Promise<number> | undefined
  readonly #swept: Promise<unknown>

  constructor(options: FileStoreOptions) {
    const settings = fileStoreSettings(options)
    // Resolved once, so a later process.chdir() cannot move the store.
    this.dir = resolve(settings.dir)
    const [sessions, locks, users, tmp, corrupt] = SUBDIRS.map((sub) => join(this.dir, sub)) as [string, string, string, string, string]
    this.#dirs = { sessions, locks, users, tmp, corrupt }
    this.#concurrency = settings.concurrency
    this.#lease = settings.staleLockTimeout
    this.#fsync = settings.fsync
    this.#locks = new Locks(this.dir, settings.staleLockTimeout, settings.lockTimeout)
    this.#users = new UserIndex(users)
    this.#slots = new Slots(sessions, locks)
    this.#timer = setInterval(() => {
      this.reap().catch((err: unknown) => debug('reap of %s failed: %O', this.dir, err))
    }, settings.reapInterval)
    this.#timer.unref()
    // Temp files of writes killed mid-way (kill -9, a container stopped) go at start-up.
    this.#swept = sweepTemp(this.#dirs, this.#concurrency, this.#lease).then(
      (n) => n > 0 && debug('removed %d temp files of unfinished writes in %s', n, this.dir),
      (err: unknown) => debug('start-up sweep of %s failed: %O', this.dir, err),
    )
  }

  async load(id: string, options: LoadOptions = {}): Promise<SessionRecord | null> {
    if (!isValidSessionId(id)) return null
    const slot = this.#slots.get(id)
    const openedAt = Date.now()
    let fd: number
    try {
      fd = await f.fsOpen(slot.file, 'r')
    } catch (err) {
      slot.seen = undefined
      if (f.isCode(err, 'ENOENT')) return null // unknown id: one failed open, nothing else
      throw this.#fail('read a session', err)
    }

    let record: SessionRecord | null = null
    let cleanup: 'expired' | 'corrupt' | undefined
    let reason = ''
    slot.seen = undefined
    try {
      const st = await f.fsFstat(fd)
      const read = await readOpen(fd, id, st)
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
            await f.fsFutimes(fd, now / 1000, touched / 1000).catch((err: unknown) => debug('could not expire %s: %O', slot.key, err))
          } else if (touched !== expiresAt) {
            // The touch is metadata only: the data is never rewritten without the version check.
            await f.fsFutimes(fd, now / 1000, touched / 1000)
            expiresAt = touched
          }
        }
        if (cleanup === undefined) {
          record = toRecord(read.file, expiresAt)
          slot.seen = seenAt(st, read.file, openedAt)
        }
      }
    } catch (err) {
      throw this.#fail('read a session', err)
    } finally {
      await f.fsClose(fd).catch(f.ignore)
    }

    if (cleanup !== undefined) {
      // Best effort: the answer is null either way, and the reaper retries what fails here.
      await this.#cleanup(slot, cleanup, reason).catch((err: unknown) => debug('could not clean up %s: %O', slot.key, err))
    }
    return record
  }

  async save(id: string, change: SessionChange): Promise<SaveResult> {
    if (!isValidSessionId(id)) throw new TypeError(`FileStore: invalid session id ${JSON.stringify(String(id).slice(0, 64))}`)
    const slot = this.#slots.get(id)
    const { deadline } = change
    return this.#underLock('save a session', slot, deadline, async (held) => {
      const read = await this.#readCurrent(slot, id)
      const now = Date.now()
      const current = read.kind === 'ok' && read.expiresAt > now ? read : undefined

      if (change.expectedVersion === null) {
        if (current) return { ok: false, reason: 'conflict', current: toRecord(current.file, current.expiresAt) }
      } else {
        if (!current) {
          await this.#removeLocked(slot, read, held, 'was gone at save')
          return { ok: false, reason: 'gone' }
        }
        if (current.file.version !== change.expectedVersion) {
          return { ok: false, reason: 'conflict', current: toRecord(current.file, current.expiresAt) }
        }
      }
      if (read.kind === 'corrupt') await this.#moveAside(slot, read.reason)

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

      // Index entry first, file second, old entry last: a crash (or a write given up at its
      // deadline) can leave an extra entry, pruned when read, never a session missing from its index.
      const before = read.kind === 'ok' ? read.file.userId : undefined
      if (userId !== undefined && userId !== before) await this.#users.add(userId, slot.key)
      await this.#writeFile(slot, held, JSON.stringify(next), change.expiresAt, deadline)
      if (before !== undefined && before !== userId) await this.#users.remove(before, slot.key)
      return { ok: true, version: next.version }
    })
  }

  async touch(id: string, expiresAt: number): Promise<void> {
    if (!isValidSessionId(id)) return
    let fd: number
    try {
      fd = await f.fsOpen(this.#slots.get(id).file, 'r')
    } catch (err) {
      if (f.isCode(err, 'ENOENT')) return
      throw this.#fail('touch a session', err)
    }
    try {
      // An expired session stays expired: a touch must not bring it back.
      const { mtimeMs } = await f.fsFstat(fd)
      if (Math.round(mtimeMs) > Date.now()) await f.fsFutimes(fd, Date.now() / 1000, expiresAt / 1000)
    } catch (err) {
      throw this.#fail('touch a session', err)
    } finally {
      await f.fsClose(fd).catch(f.ignore)
    }
  }

  async destroy(id: string): Promise<void> {
    if (!isValidSessionId(id)) return
    const slot = this.#slots.get(id)
    await this.#underLock('destroy a session', slot, undefined, async (held) => {
      await this.#removeLocked(slot, await this.#read(slot, id), held, 'destroyed')
    })
  }

  async listByUser(userId: string): Promise<string[]> {
    const found: Array<{ id: string; createdAt: number }> = []
    await this.#guard('list sessions by user', async () => {
      await f.forEachLimited(await this.#users.entries(userId), this.#concurrency, async (key) => {
        const slot = this.#slots.byKey(key)
        const read = await this.#read(slot)
        if (read.kind === 'ok' && read.file.userId === userId) {
          if (read.expiresAt > Date.now()) found.push({ id: read.file.id, createdAt: read.file.createdAt })
        } else if (read.kind === 'missing' || read.kind === 'ok') {
          await this.#pruneEntry(userId, slot)
        }
      })
    })
    return found.sort((a, b) => a.createdAt - b.createdAt).map((s) => s.id)
  }

  async destroyByUser(userId: string): Promise<number> {
    let destroyed = 0
    await this.#guard('destroy sessions by user', async () => {
      await f.forEachLimited(await this.#users.entries(userId), this.#concurrency, async (key) => {
        const slot = this.#slots.byKey(key)
        await this.#underLock('destroy a session', slot, undefined, async (held) => {
          const read = await this.#read(slot)
          if (read.kind === 'ok' && read.file.userId !== userId) return this.#users.remove(userId, key) // moved to another user
          if (read.kind === 'ok' && read.expiresAt > Date.now()) destroyed++
          await this.#removeLocked(slot, read, held, 'destroyed with its user')
          await this.#users.remove(userId, key)
        })
      })
      await f.rmdirQuiet(this.#users.dirOf(userId))
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
      await this.#eachSessionFile((key) => {
        const slot = this.#slots.byKey(key)
        return this.#underLock('clear a session', slot, undefined, async (held) => this.#removeLocked(slot, await this.#read(slot), held, 'cleared'))
      })
      // What remains in users/ points at sessions that are gone now; prune it under the same locks.
      for (const user of await f.readdirOrEmpty(this.#dirs.users)) {
        if (!KEY.test(user)) continue
        const dir = join(this.#dirs.users, user)
        await f.forEachLimited((await f.readdirOrEmpty(dir)).filter((k) => KEY.test(k)), this.#concurrency, (key) => {
          const slot = this.#slots.byKey(key)
          return this.#underLock('clear a session', slot, undefined, async () => {
            if ((await this.#read(slot)).kind === 'missing') await f.unlinkQuiet(join(dir, key))
          })
        })
        await f.rmdirQuiet(dir)
      }
    })
  }

  async close(): Promise<void> {
    clearInterval(this.#timer)
    this.#locks.close()
    await this.#swept
    await this.#reaping?.catch(() => undefined)
  }

  /**
   * Deletes expired sessions (and their index entries), temp files of writes that will never
   * finish, and stale locks. Runs on an unref'd timer every `reapInterval`; callable directly. It
   * streams the directory and works on at most `concurrency` files at once, so it never runs out
   * of file descriptors however many sessions there are. Resolves to the number of sessions deleted.
   *
   * @example
   * ```ts
   * const removed = await store.reap()
   * ```
   */
  reap(): Promise<number> {
    // One reap at a time per store; a tick that finds one running joins it.
    this.#reaping ??= this.#guard('reap sessions', () =>
      reap({
        dirs: this.#dirs,
        concurrency: this.#concurrency,
        lease: this.#lease,
        locks: this.#locks,
        eachSessionExpiry: (fn) => this.#eachSessionExpiry(fn),
        removeIfExpired: (key) => this.#removeIfExpired(this.#slots.byKey(key)),
      }),
    )
      .then((removed) => {
        if (removed > 0) debug('reaped %d expired sessions in %s', removed, this.dir)
        return removed
      })
      .finally(() => {
        this.#reaping = undefined
      })
    return this.#reaping
  }

  // ---- reading and writing session files ----

  /** Reads a session file; `id`, when known, must match the id inside. Never throws ENOENT. */
  async #read(slot: Slot, id?: string): Promise<Read> {
    let fd: number
    try {
      fd = await f.fsOpen(slot.file, 'r')
    } catch (err) {
      if (f.isCode(err, 'ENOENT')) return { kind: 'missing' }
      throw err
    }
    try {
      const read = await readOpen(fd, id)
      if (read.kind === 'ok' && id === undefined && keyOf(read.file.id) !== slot.key) {
        return { kind: 'corrupt', reason: 'the id inside does not match the file name' }
      }
      return read
    } finally {
      await f.fsClose(fd).catch(f.ignore)
    }
  }

  /**
   * The session as it is now, under its lock: one stat when it is still the file the last load of
   * this id read (see `Seen` in format.ts), a full read otherwise.
   */
  async #readCurrent(slot: Slot, id: string): Promise<Read> {
    const seen = slot.seen
    slot.seen = undefined // this save replaces the file: what was seen is spent either way
    if (seen === undefined) return this.#read(slot, id)
    let st: Stats
    try {
      st = await f.fsStat(slot.file)
    } catch (err) {
      if (f.isCode(err, 'ENOENT')) return { kind: 'missing' }
      throw err
    }
    if (!stillSeen(st, seen)) return this.#read(slot, id)
    return { kind: 'ok', file: seen.file, expiresAt: Math.round(st.mtimeMs) }
  }

  /**
   * Writes a whole session file atomically: temp file, (fsync), rename. Its mtime is the expiry.
   * The temp file is named after the lock, so a sweep can tell an unfinished write from a live one.
   */
  async #writeFile(slot: Slot, held: Held, text: string, expiresAt: number, deadline: number | undefined): Promise<void> {
    const temp = `${this.#dirs.tmp}/${slot.key}.${held.text}`
    let fd: number | undefined
    try {
      fd = await f.fsOpen(temp, 'wx', 0o600)
      await f.fsWriteAll(fd, Buffer.from(text, 'utf8'))
      // After the last write, or the write would move the mtime again.
      await f.fsFutimes(fd, Date.now() / 1000, expiresAt / 1000)
      // Without this, a power cut after the rename could leave the name on an empty inode.
      // The directory is not fsynced: a crash may then lose this last save, but the name
      // always points at a whole file, old or new.
      if (this.#fsync) await f.fsFsync(fd)
      const closing = fd
      fd = undefined
      await f.fsClose(closing)
      // The commit point: past the deadline, or with the lease too short to trust, nothing lands.
      this.#locks.assertHeld(held, deadline)
      await f.fsRename(temp, slot.file)
    } catch (err) {
      if (fd !== undefined) fs.close(fd, f.ignore)
      await f.unlinkQuiet(temp).catch(f.ignore)
      throw err
    }
  }

  /** Deletes what `read` found, under the caller's lock: the file and its index entry. */
  async #removeLocked(slot: Slot, read: Read, held: Held, why: string): Promise<void> {
    if (read.kind === 'missing') return
    this.#locks.assertHeld(held)
    if (read.kind === 'corrupt') return this.#moveAside(slot, read.reason)
    await f.unlinkQuiet(slot.file)
    if (read.file.userId !== undefined) await this.#users.remove(read.file.userId, slot.key)
    if (why !== 'destroyed') debug('removed session %s (%s)', slot.key, why)
  }

  /** Moves a corrupt file to corrupt/ for an operator to inspect, instead of deleting it. */
  async #moveAside(slot: Slot, reason: string): Promise<void> {
    // link() fails with EEXIST where rename() would replace: two files of one session moved aside
    // in the same millisecond both stay (the later one under the next free millisecond).
    let dest: string
    for (let at = Date.now(); ; at++) {
      dest = join(this.#dirs.corrupt, `${slot.key}.${at}.json`)
      try {
        await link(slot.file, dest)
        break
      } catch (err) {
        if (f.isCode(err, 'ENOENT')) return
        if (!f.isCode(err, 'EEXIST')) throw err
      }
    }
    await f.unlinkQuiet(slot.file)
    debug('session file %s is corrupt (%s): moved it to %s', slot.file, reason, dest)
  }

  /** Removes an expired or corrupt file that `load` found, once its lock is held and it is checked again. */
  async #cleanup(slot: Slot, what: 'expired' | 'corrupt', reason: string): Promise<void> {
    if (what === 'expired') {
      await this.#removeIfExpired(slot)
      return
    }
    await this.#underLock('move a corrupt session aside', slot, undefined, async () => {
      const again = await this.#read(slot)
      if (again.kind === 'corrupt') await this.#moveAside(slot, reason)
    })
  }

  async #removeIfExpired(slot: Slot): Promise<boolean> {
    return this.#underLock('remove an expired session', slot, undefined, async (held) => {
      const read = await this.#read(slot)
      if (read.kind === 'ok' && read.expiresAt > Date.now()) return false // saved or touched meanwhile
      await this.#removeLocked(slot, read, held, 'expired')
      return read.kind === 'ok'
    })
  }

  /** Drops an index entry whose session is gone or has another owner, checked under the session's lock. */
  async #pruneEntry(userId: string, slot: Slot): Promise<void> {
    await this.#underLock('prune the user index', slot, undefined, async () => {
      const read = await this.#read(slot)
      if (read.kind === 'missing' || (read.kind === 'ok' && read.file.userId !== userId)) await this.#users.remove(userId, slot.key)
    })
  }

  // ---- plumbing ----

  /**
   * Runs `fn` holding the session's lock: one at a time in this process (a queue), and between
   * processes (the lock file). Makes the directories on first use, and again if they vanished;
   * maps errors to StoreError.
   */
  #underLock<T>(what: string, slot: Slot, deadline: number | undefined, fn: (held: Held) => Promise<T>): Promise<T> {
    return this.#queue.run(slot.key, async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.#setup()
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
          throw this.#fail(what, err)
        }
      }
    })
  }

  /** Makes the directory layout once (again after a directory was removed). */
  #setup(): Promise<void> {
    this.#ready ??= (async () => {
      await f.makeDir(this.dir)
      for (const sub of SUBDIRS) await f.makeDir(this.#dirs[sub])
    })().catch((err: unknown) => {
      this.#ready = undefined
      throw err
    })
    return this.#ready
  }

  async #eachSessionFile(fn: (key: string) => Promise<unknown>): Promise<void> {
    const dir = await f.openDirOrNull(this.#dirs.sessions)
    if (!dir) return
    await f.forEachLimited(dir, this.#concurrency, async (entry) => {
      const match = SESSION_FILE.exec(entry.name)
      if (match) await fn(match[1]!)
    })
  }

  /** Like #eachSessionFile, with each session's expiry (its mtime) from one stat; no file is opened. */
  async #eachSessionExpiry(fn: (key: string, expiresAt: number) => Promise<unknown>): Promise<void> {
    await this.#eachSessionFile(async (key) => {
      const st = await f.statOrNull(this.#slots.byKey(key).file)
      if (st) await fn(key, Math.round(st.mtimeMs))
    })
  }

  async #guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
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
