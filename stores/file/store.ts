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
import { join, resolve } from 'node:path'
import createDebug from 'debug'
import type {
  LoadOptions,
  Renewable,
  RenewOptions,
  RenewResult,
  SaveResult,
  SessionChange,
  SessionRecord,
} from '../../lib/store.js'
import type { FullStore } from '../../lib/full-store.js'
import { isValidSessionId, withoutExpiredKeys } from '../../lib/store.js'
import { applyChange } from '../../lib/session-data.js'
import type { StoreError } from '../../lib/store.js'
import { LifecycleListeners, type StoreNoticeListener } from '../../lib/store-notices.js'
import { storeError } from './errors.js'
import type { SessionFile, Slot } from './format.js'
import { Slots, toRecord } from './format.js'
import { SessionFiles } from './files.js'
import * as f from './fs.js'
import type { Held } from './lock.js'
import { Locks } from './lock.js'
import type { FileStoreOptions } from './options.js'
import { fileStoreSettings } from './options.js'
import { LockedRunner, SUBDIRS } from './locked-runner.js'
import { loadSession, touchSession, type SessionReads } from './reads.js'
import { saveLimited, type LimitedSave } from './user-limit.js'
import { movedResult, movedTo, renewFile, type RenewTarget } from './renew.js'
import { eachSessionExpiry, reap, sweepTemp } from './reaper.js'
import { UserDirectory } from './users.js'
import { SessionRemoval } from './removal.js'

const debug = createDebug('concord-session:file')

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
 * - A read is one open; touch-on-load sets the file's mtime (the idle expiry) and never rewrites
 *   data.
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
export class FileStore implements FullStore, Renewable {
  /** `maxSessionsPerUser` is enforced under a per-user lock (see `save`). */
  readonly enforcesUserLimit = true
  /** The absolute directory this store keeps its files in. */
  readonly dir: string
  readonly #dirs: { sessions: string; locks: string; users: string; tmp: string; corrupt: string }
  readonly #concurrency: number
  readonly #lease: number
  readonly #timer: NodeJS.Timeout
  readonly #locks: Locks
  readonly #users: UserDirectory
  readonly #slots: Slots
  readonly #files: SessionFiles
  readonly #runner: LockedRunner
  readonly #reads: SessionReads
  readonly #limited: LimitedSave
  #reaping: Promise<number> | undefined
  readonly #swept: Promise<unknown>
  readonly #notices = new LifecycleListeners()
  readonly #removal: SessionRemoval

  constructor(options: FileStoreOptions) {
    const settings = fileStoreSettings(options)
    // Resolved once, so a later process.chdir() cannot move the store.
    this.dir = resolve(settings.dir)
    const [sessions, locks, users, tmp, corrupt] = SUBDIRS.map((sub) => join(this.dir, sub)) as [
      string,
      string,
      string,
      string,
      string,
    ]
    this.#dirs = { sessions, locks, users, tmp, corrupt }
    this.#concurrency = settings.concurrency
    this.#lease = settings.staleLockTimeout
    this.#locks = new Locks(this.dir, tmp, settings.staleLockTimeout, settings.lockTimeout)
    this.#users = new UserDirectory(users)
    this.#slots = new Slots(sessions, locks)
    this.#files = new SessionFiles(this.#dirs, settings.fsync, this.#locks)
    this.#runner = new LockedRunner(this.dir, this.#dirs, this.#locks)
    this.#removal = new SessionRemoval({
      dirs: this.#dirs,
      concurrency: this.#concurrency,
      slots: this.#slots,
      locks: this.#locks,
      files: this.#files,
      users: this.#users,
      notices: this.#notices,
      runner: this.#runner,
    })
    this.#reads = {
      slots: this.#slots,
      fail: (what, err) => this.#fail(what, err),
      cleanup: (slot, what, reason) => this.#removal.cleanup(slot, what, reason),
    }
    this.#limited = {
      slots: this.#slots,
      files: this.#files,
      users: this.#users,
      underLock: (what, slot, deadline, fn) => this.#underLock(what, slot, deadline, fn),
      removeLocked: (slot, read, held, why) => this.#removal.removeLocked(slot, read, held, why),
      save: (slot, id, change) => this.#save(slot, id, change),
    }
    this.#timer = setInterval(() => {
      this.reap().catch((err: unknown) => debug('reap of %s failed: %O', this.dir, err))
    }, settings.reapInterval)
    this.#timer.unref()
    // Temp files of writes killed mid-way (kill -9, a container stopped) go at start-up.
    this.#swept = sweepTemp(this.#dirs, this.#concurrency, this.#lease, this.#locks).then(
      (n) => n > 0 && debug('removed %d temp files of unfinished writes in %s', n, this.dir),
      (err: unknown) => debug('start-up sweep of %s failed: %O', this.dir, err),
    )
  }

  async load(id: string, options: LoadOptions = {}): Promise<SessionRecord | null> {
    return loadSession(this.#reads, id, options)
  }

  async save(id: string, change: SessionChange): Promise<SaveResult> {
    if (!isValidSessionId(id))
      throw new TypeError(
        `FileStore: invalid session id ${JSON.stringify(String(id).slice(0, 64))}`,
      )
    const slot = this.#slots.get(id)
    const result =
      change.userLimit === undefined || change.userId === null
        ? await this.#save(slot, id, change)
        : await saveLimited(this.#limited, slot, id, change, change.userId, change.userLimit)
    // The id was renewed: the save goes to the session it forwards to, its lock let go of.
    const to = movedTo(result)
    if (to === undefined) return result
    const followed = await this.save(to, change)
    return followed.ok ? { ...followed, renewedTo: followed.renewedTo ?? to } : followed
  }

  /**
   * Moves the session to `newId` under the locks of both ids, keeping its data, version, owner
   * and times; `oldId` forwards to it for `graceMs` (never past its expiry). See `Renewable`.
   *
   * @example
   * ```ts
   * await store.renew(oldId, newId, { now: Date.now(), graceMs: 30_000 })
   * ```
   */
  renew(oldId: string, newId: string, options: RenewOptions): Promise<RenewResult> {
    const target: RenewTarget = {
      slots: this.#slots,
      files: this.#files,
      users: this.#users,
      underLock: (what, slot, fn) => this.#underLock(what, slot, undefined, fn),
    }
    return renewFile(target, oldId, newId, options)
  }

  #save(slot: Slot, id: string, change: SessionChange): Promise<SaveResult> {
    const { deadline } = change
    return this.#underLock('save a session', slot, deadline, async (held) => {
      const read = await this.#files.readCurrent(slot, id)
      const now = Date.now()
      if (read.kind === 'forward' && read.expiresAt > now) return movedResult(read.to)
      const current = read.kind === 'ok' && read.expiresAt > now ? read : undefined

      if (change.expectedVersion === null) {
        if (current)
          return {
            ok: false,
            reason: 'conflict',
            current: toRecord(current.file, current.expiresAt),
          }
      } else {
        if (!current) {
          await this.#removal.removeLocked(slot, read, held, 'was gone at save')
          return { ok: false, reason: 'gone' }
        }
        if (current.file.version !== change.expectedVersion) {
          return {
            ok: false,
            reason: 'conflict',
            current: toRecord(current.file, current.expiresAt),
          }
        }
      }
      if (read.kind === 'corrupt') await this.#files.moveAside(slot, read.reason)

      const stored = current && withoutExpiredKeys(toRecord(current.file, 0), now).data
      const data = applyChange(stored, change)
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
      if (current?.file.renewedAt !== undefined) next.renewedAt = current.file.renewedAt
      if (change.keyExpires !== undefined && Object.keys(change.keyExpires).length > 0)
        next.keyExpires = change.keyExpires

      // Index entry first, file second, old entry last: a crash (or a write given up at its
      // deadline) can leave an extra entry, pruned when read, never a session missing from its
      // index.
      const before = read.kind === 'ok' ? read.file.userId : undefined
      if (userId !== undefined && userId !== before) await this.#users.add(userId, slot.key)
      await this.#files.write(slot, held, JSON.stringify(next), change.expiresAt, deadline)
      if (before !== undefined && before !== userId) await this.#users.remove(before, slot.key)
      return { ok: true, version: next.version }
    })
  }

  async touch(id: string, expiresAt: number): Promise<void> {
    return touchSession(this.#reads, id, expiresAt)
  }

  async destroy(id: string): Promise<void> {
    if (!isValidSessionId(id)) return
    const slot = this.#slots.get(id)
    const forward = await this.#underLock('destroy a session', slot, undefined, async (held) => {
      const read = await this.#files.read(slot, id)
      await this.#removal.removeLocked(slot, read, held, 'destroyed')
      return read.kind === 'forward' && read.expiresAt > Date.now() ? read.to : undefined
    })
    // A renewed id within its grace: the session it forwards to goes too.
    if (forward !== undefined) await this.destroy(forward)
  }

  async listByUser(userId: string): Promise<string[]> {
    const found: Array<{ id: string; createdAt: number }> = []
    await this.#guard('list sessions by user', async () => {
      await f.forEachLimited(await this.#users.entries(userId), this.#concurrency, async (key) => {
        const slot = this.#slots.byKey(key)
        const read = await this.#files.read(slot)
        if (read.kind === 'ok' && read.file.userId === userId) {
          if (read.expiresAt > Date.now())
            found.push({ id: read.file.id, createdAt: read.file.createdAt })
        } else if (read.kind !== 'corrupt') {
          await this.#removal.pruneEntry(userId, slot)
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
          const read = await this.#files.read(slot)
          if (read.kind === 'ok' && read.file.userId !== userId)
            return this.#users.remove(userId, key) // moved to another user
          if (read.kind === 'ok' && read.expiresAt > Date.now()) destroyed++
          await this.#removal.removeLocked(slot, read, held, 'destroyed with its user')
          await this.#users.remove(userId, key)
        })
      })
      await f.rmdirQuiet(this.#users.dirOf(userId))
    })
    this.#notices.signedOut(userId, destroyed)
    return destroyed
  }

  /**
   * Reports sessions this process found expired (at a load, or by its reap) and its
   * `destroyByUser` calls; the middleware turns them into `expired` and `signedOutEverywhere`
   * events. Each expiry is reported once, by the process that removed the file.
   *
   * @example
   * ```ts
   * const stop = store.onLifecycle((notice) => console.log(notice.type))
   * ```
   */
  onLifecycle(listener: StoreNoticeListener): () => void {
    return this.#notices.add(listener)
  }

  async count(): Promise<number> {
    let live = 0
    await this.#guard('count sessions', async () => {
      const now = Date.now()
      // A renewed id's forward is not a session.
      await eachSessionExpiry(this.#dirs.sessions, this.#concurrency, async (_, at, forward) => {
        if (at > now && !forward) live++
      })
    })
    return live
  }

  async clear(): Promise<void> {
    await this.#guard('clear sessions', () => this.#removal.clearAll())
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
   * of file descriptors however many sessions there are. Resolves to the number of sessions
   * deleted.
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
        eachSessionExpiry: (fn) => eachSessionExpiry(this.#dirs.sessions, this.#concurrency, fn),
        removeIfExpired: (key) => this.#removal.removeIfExpired(this.#slots.byKey(key), 'prune'),
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

  // ---- plumbing ----

  /** Runs `fn` holding the session's lock (see LockedRunner.run). */
  #underLock<T>(
    what: string,
    slot: Slot,
    deadline: number | undefined,
    fn: (held: Held) => Promise<T>,
  ): Promise<T> {
    return this.#runner.run(what, slot, deadline, fn)
  }

  async #guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw this.#fail(what, err)
    }
  }

  #fail(what: string, err: unknown): StoreError {
    return storeError(this.dir, what, err)
  }
}
