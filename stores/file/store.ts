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
import { KeyedQueue } from '../../lib/keyed-queue.js'
import type {
  Clearable,
  Closable,
  Countable,
  LoadOptions,
  Renewable,
  RenewOptions,
  RenewResult,
  SaveResult,
  SessionChange,
  SessionRecord,
  Store,
  UserIndex,
} from '../../lib/store.js'
import { isValidSessionId, touchIsDue, touchedExpiry, withoutExpiredKeys } from '../../lib/store.js'
import { applyChange } from '../../lib/session-data.js'
import { planUserLimit, type UserLimit } from '../../lib/user-limit.js'
import type { StoreError } from '../../lib/store.js'
import {
  LifecycleListeners,
  type ReportsLifecycle,
  type StoreNoticeListener,
} from '../../lib/store-notices.js'
import { storeError } from './errors.js'
import type { Read, SessionFile, Slot } from './format.js'
import { KEY, Slots, isForwardStat, keyOf, readOpen, seenAt, toRecord } from './format.js'
import { forwarded } from '../../lib/store-renewal.js'
import { movedResult, movedTo, renewFile, type RenewTarget } from './renew.js'
import { SessionFiles } from './files.js'
import * as f from './fs.js'
import type { Held } from './lock.js'
import { Locks } from './lock.js'
import type { FileStoreOptions } from './options.js'
import { fileStoreSettings } from './options.js'
import { eachSessionExpiry, eachSessionFile, reap, sweepTemp } from './reaper.js'
import { UserDirectory } from './users.js'

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
export class FileStore
  implements Store, UserIndex, Countable, Clearable, Closable, Renewable, ReportsLifecycle
{
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
  /** This process's own operations on one session run one at a time, so they never spin on the lock file. */
  readonly #queue = new KeyedQueue()
  #ready: Promise<void> | undefined
  #reaping: Promise<number> | undefined
  readonly #swept: Promise<unknown>
  readonly #notices = new LifecycleListeners()

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
    let forward: string | undefined
    let cleanup: 'expired' | 'corrupt' | undefined
    let reason = ''
    slot.seen = undefined
    try {
      const st = await f.fsFstat(fd)
      const read = await readOpen(fd, id, st)
      if (read.kind === 'forward') {
        // A renewed id: within its grace it reaches the session it was renewed to.
        if (read.expiresAt > Date.now()) forward = read.to
        else cleanup = 'expired'
      } else if (read.kind !== 'ok') {
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
            await f
              .fsFutimes(fd, now / 1000, touched / 1000)
              .catch((err: unknown) => debug('could not expire %s: %O', slot.key, err))
          } else if (touched !== expiresAt && touchIsDue(expiresAt, touched, options.touchAfter)) {
            // The touch is metadata only: the data is never rewritten without the version check.
            await f.fsFutimes(fd, now / 1000, touched / 1000)
            expiresAt = touched
          }
        }
        if (cleanup === undefined) {
          // Keys past their own lifetime are left out; the next save leaves them out of the file.
          record = withoutExpiredKeys(toRecord(read.file, expiresAt), now)
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
      await this.#cleanup(slot, cleanup, reason).catch((err: unknown) =>
        debug('could not clean up %s: %O', slot.key, err),
      )
    }
    if (forward !== undefined) return forwarded(await this.load(forward, options), forward)
    return record
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
        : await this.#saveLimited(slot, id, change, change.userId, change.userLimit)
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

  /**
   * A save that may link the session to a user under `maxSessionsPerUser`. Sign-ins of one user
   * queue on the user's own lock, taken before any session lock and never after one, so
   * counting the user's sessions, evicting the oldest and linking this one happen as one step.
   */
  #saveLimited(
    slot: Slot,
    id: string,
    change: SessionChange,
    userId: string,
    limit: UserLimit,
  ): Promise<SaveResult> {
    const { deadline } = change
    const userSlot = this.#slots.byKey(keyOf(`user:${userId}`))
    return this.#underLock('link a session to its user', userSlot, deadline, async () => {
      // Only a link that would be written counts; a save that would conflict evicts nothing.
      const own = await this.#files.read(slot, id)
      const live = own.kind === 'ok' && own.expiresAt > Date.now() ? own.file : undefined
      const writes =
        change.expectedVersion === null ? !live : live?.version === change.expectedVersion
      if (!writes || live?.userId === userId || own.kind === 'forward')
        return this.#save(slot, id, change)
      const others = await this.#users.liveSessions(userId, slot.key, (key) =>
        this.#files.read(this.#slots.byKey(key)),
      )
      const plan = planUserLimit(limit, [...others.values()])
      if (plan === 'refuse') return { ok: false, reason: 'userLimit' }
      for (const other of plan) {
        const otherSlot = this.#slots.byKey(others.get(other)!.key)
        await this.#underLock('evict a session', otherSlot, deadline, async (held) => {
          const read = await this.#files.read(otherSlot)
          if (read.kind === 'ok' && read.file.userId === userId)
            await this.#removeLocked(otherSlot, read, held, 'evicted by maxSessionsPerUser')
        })
      }
      const result = await this.#save(slot, id, change)
      return result.ok && plan.length > 0 ? { ...result, evicted: plan } : result
    })
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
          await this.#removeLocked(slot, read, held, 'was gone at save')
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
      // deadline) can leave an extra entry, pruned when read, never a session missing from its index.
      const before = read.kind === 'ok' ? read.file.userId : undefined
      if (userId !== undefined && userId !== before) await this.#users.add(userId, slot.key)
      await this.#files.write(slot, held, JSON.stringify(next), change.expiresAt, deadline)
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
    let forward: string | undefined
    try {
      // An expired session stays expired: a touch must not bring it back.
      const st = await f.fsFstat(fd)
      if (Math.round(st.mtimeMs) <= Date.now()) return
      if (!isForwardStat(st)) await f.fsFutimes(fd, Date.now() / 1000, expiresAt / 1000)
      else {
        // A renewed id within its grace: the touch is for the session it forwards to.
        const read = await readOpen(fd, id, st)
        if (read.kind === 'forward') forward = read.to
      }
    } catch (err) {
      throw this.#fail('touch a session', err)
    } finally {
      await f.fsClose(fd).catch(f.ignore)
    }
    if (forward !== undefined) await this.touch(forward, expiresAt)
  }

  async destroy(id: string): Promise<void> {
    if (!isValidSessionId(id)) return
    const slot = this.#slots.get(id)
    const forward = await this.#underLock('destroy a session', slot, undefined, async (held) => {
      const read = await this.#files.read(slot, id)
      await this.#removeLocked(slot, read, held, 'destroyed')
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
          const read = await this.#files.read(slot)
          if (read.kind === 'ok' && read.file.userId !== userId)
            return this.#users.remove(userId, key) // moved to another user
          if (read.kind === 'ok' && read.expiresAt > Date.now()) destroyed++
          await this.#removeLocked(slot, read, held, 'destroyed with its user')
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
    await this.#guard('clear sessions', async () => {
      await eachSessionFile(this.#dirs.sessions, this.#concurrency, (key) => {
        const slot = this.#slots.byKey(key)
        return this.#underLock('clear a session', slot, undefined, async (held) =>
          this.#removeLocked(slot, await this.#files.read(slot), held, 'cleared'),
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
            return this.#underLock('clear a session', slot, undefined, async () => {
              if ((await this.#files.read(slot)).kind === 'missing')
                await f.unlinkQuiet(join(dir, key))
            })
          },
        )
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
        eachSessionExpiry: (fn) => eachSessionExpiry(this.#dirs.sessions, this.#concurrency, fn),
        removeIfExpired: (key) => this.#removeIfExpired(this.#slots.byKey(key), 'prune'),
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

  // ---- removing session files ----

  /** Deletes what `read` found, under the caller's lock: the file and its index entry. */
  async #removeLocked(slot: Slot, read: Read, held: Held, why: string): Promise<void> {
    if (read.kind === 'missing') return
    this.#locks.assertHeld(held)
    if (read.kind === 'corrupt') return this.#files.moveAside(slot, read.reason)
    if (read.kind === 'forward') return f.unlinkQuiet(slot.file)
    await f.unlinkQuiet(slot.file)
    if (read.file.userId !== undefined) await this.#users.remove(read.file.userId, slot.key)
    if (why !== 'destroyed') debug('removed session %s (%s)', slot.key, why)
  }

  /** Removes an expired or corrupt file that `load` found, once its lock is held and it is checked again. */
  async #cleanup(slot: Slot, what: 'expired' | 'corrupt', reason: string): Promise<void> {
    if (what === 'expired') {
      await this.#removeIfExpired(slot, 'load')
      return
    }
    await this.#underLock('move a corrupt session aside', slot, undefined, async () => {
      const again = await this.#files.read(slot)
      if (again.kind === 'corrupt') await this.#files.moveAside(slot, reason)
    })
  }

  async #removeIfExpired(slot: Slot, seen: 'load' | 'prune'): Promise<boolean> {
    return this.#underLock('remove an expired session', slot, undefined, async (held) => {
      const read = await this.#files.read(slot)
      if (read.kind === 'ok' && read.expiresAt > Date.now()) return false // saved or touched meanwhile
      await this.#removeLocked(slot, read, held, 'expired')
      if (read.kind !== 'ok') return false
      this.#notices.expired(read.file.id, seen, read.file.userId)
      return true
    })
  }

  /** Drops an index entry whose session is gone or has another owner, checked under the session's lock. */
  async #pruneEntry(userId: string, slot: Slot): Promise<void> {
    await this.#underLock('prune the user index', slot, undefined, async () => {
      const read = await this.#files.read(slot)
      if (read.kind !== 'corrupt' && (read.kind !== 'ok' || read.file.userId !== userId))
        await this.#users.remove(userId, slot.key)
    })
  }

  // ---- plumbing ----

  /**
   * Runs `fn` holding the session's lock: one at a time in this process (a queue), and between
   * processes (the lock file). Makes the directories on first use, and again if they vanished;
   * maps errors to StoreError.
   */
  #underLock<T>(
    what: string,
    slot: Slot,
    deadline: number | undefined,
    fn: (held: Held) => Promise<T>,
  ): Promise<T> {
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
