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
import { StoreError, isValidSessionId } from '../../lib/store.js'
import type { RedisConnection } from './client.js'
import { LifecycleListeners, type StoreNoticeListener } from '../../lib/store-notices.js'
import { CallGuard } from './guard.js'
import { connectRedisReading } from './connect-redis.js'
import type { ConnectRedisReading } from './connect-redis.js'
import { resolveOptions, type RedisStoreOptions } from './options.js'
import { loadSession, type LoadContext } from './load.js'
import { asReply } from './records.js'
import { saveSteps, type SaveContext } from './save.js'
import { scanSessions, type ScanContext } from './scan.js'
import { DESTROY_SCRIPT, TOUCH_SCRIPT, type Script } from './scripts.js'
import { UserIndexKeys } from './user-index.js'
import { destroyUserSessions, listUserSessions, type UserSessionsContext } from './user-sessions.js'
import { MAX_HOPS, renewSession, type RenewalContext } from './renew.js'

/**
 * A session store on Redis or Redis Cluster, through ioredis or node-redis v5 (the client
 * connect-redis 9 uses). The client is detected at construction; both behave the same.
 *
 * Layout: one hash per session at `prefix + id`. Each top-level session key is a field holding
 * its JSON text; metadata lives in fields starting with `@` (`@version`, `@createdAt`,
 * `@expiresAt`, `@idleTimeout`, `@cookie`, `@userId`), and a user key that starts with `@` gets
 * one more `@`, so the two never collide. The key expires at `@expiresAt` (PEXPIREAT).
 * A user's sessions are indexed in a set at `prefix + 'user:' + userId` (a sorted set once
 * `maxSessionsPerUser` applied to the user; see redis/user-index.ts).
 *
 * Round trips: `load` (with its touch) is one Lua script call, and so is a `save`, so a reading
 * request costs one round trip and a writing request two. A save that gives the session a new
 * owner costs one or two more: the owner's index is written first (see {@link RedisStore.save}).
 *
 * Cluster: every script touches a single session key (the connect-redis key it converts is the
 * same key), so no script crosses slots. The user index lives in its own slot and is written
 * with its own commands; `count` and `clear` SCAN every master. No KEYS, no multi-key commands.
 *
 * Failure: a call settles within `timeout` ms (`count` and `clear`: each SCAN batch), with a
 * StoreError (status 503) if Redis is unreachable; once one has timed out, calls fail at once
 * while a single PING checks for Redis's return. A save that fails never lands later: its
 * script refuses to write past the save's deadline, by Redis's clock. Data it cannot read is a
 * StoreError naming the key. The store adds no 'error' listener to the client: attach your own.
 *
 * @example
 * ```ts
 * import { createClient } from 'redis'   // or: import Redis from 'ioredis'; new Redis(url)
 * import session from 'concord-session'
 * import { RedisStore } from 'concord-session/redis'
 *
 * const client = createClient({ url: process.env.REDIS_URL })
 * client.on('error', (err) => console.error('redis', err.message))
 * await client.connect()
 * app.use(session(new RedisStore({ client }), { secret: process.env.SESSION_SECRET! }))
 * ```
 */
export class RedisStore implements FullStore, Renewable {
  /**
   * `maxSessionsPerUser` is decided by one script on the user's index (user-index.ts), on a
   * single server and on a cluster: the evicted are marked there in the same step, then
   * destroyed before the sign-in's save (see user-index.ts for a failure in between).
   */
  readonly enforcesUserLimit = true
  readonly #redis: RedisConnection
  readonly #users: UserIndexKeys
  readonly #guard: CallGuard
  readonly #prefix: string
  readonly #legacy: ConnectRedisReading
  readonly #timeout: number
  /**
   * A save's script refuses to write this many ms before the caller is told it failed, so a
   * reply on its way, or a Redis clock a little behind the app's, cannot turn a reported
   * failure into a write.
   */
  readonly #margin: number
  readonly #notices = new LifecycleListeners()
  /** What the load, save and user-session steps (load.ts, save.ts, user-sessions.ts) need. */
  readonly #context: LoadContext & SaveContext & UserSessionsContext
  readonly #scanning: ScanContext

  constructor(options: RedisStoreOptions) {
    const resolved = resolveOptions(options)
    this.#redis = resolved.connection
    this.#prefix = resolved.prefix
    this.#legacy = connectRedisReading(this.#prefix, resolved.legacyPrefix)
    this.#timeout = resolved.timeout
    this.#margin = Math.min(100, Math.floor(resolved.timeout / 10))
    const redis = this.#redis
    this.#users = new UserIndexKeys(
      redis,
      (userId) => this.#userKey(userId),
      (id) => this.#key(id),
      (id, userId) => this.#script(DESTROY_SCRIPT, id, [String(Date.now()), '1', userId]),
    )
    this.#guard = new CallGuard(
      (err) => redis.isReply(err),
      (key) => redis.command(key, ['PING']),
      resolved.timeout,
    )
    this.#context = {
      redis,
      users: this.#users,
      key: (id) => this.#key(id),
      script: (script, id, args) => this.#script(script, id, args),
      notices: this.#notices,
    }
    this.#scanning = {
      redis,
      prefix: this.#prefix,
      legacy: this.#legacy,
      call: (what, key, until, work) => this.#call(what, key, until, work),
      timeout: this.#timeout,
    }
  }

  /**
   * The session, or `null` if unknown, expired, or past its absolute timeout at `touchAt`.
   * With `touchAt`, the idle expiry moves in the same script call: one round trip.
   *
   * @example
   * ```ts
   * const record = await store.load(id, { touchAt: Date.now(), absoluteTimeout: 12 * 3_600_000 })
   * ```
   */
  load(id: string, options: LoadOptions = {}): Promise<SessionRecord | null> {
    if (!isValidSessionId(id)) return Promise.resolve(null)
    const key = this.#key(id)
    const now = Date.now()
    return this.#call('load of', key, now + this.#timeout, () =>
      loadSession(this.#context, id, key, options, now),
    )
  }

  /**
   * Writes the changed keys against `expectedVersion` in one script call: the version check,
   * HDEL of the unset keys, one HSET of the set keys and changed metadata, and the TTL.
   *
   * The save settles by `change.deadline` (if any) or `timeout`, whichever comes first. Its
   * script compares Redis's clock (TIME) with that deadline, less a small margin, and refuses to
   * write after it: so a save answered with an error (ETIMEDOUT) is not applied later, when a
   * hung Redis resumes or a reconnecting client sends its queue.
   *
   * A new owner (login) is added to the user index before the session names it, so
   * `destroyByUser` can never miss a session: a create with a `userId` sends SADD first, and
   * a save that changes the owner is told so by the script and repeats after the SADD.
   * A connect-redis session is converted on its first save: the script hands back the string,
   * this method converts it exactly (JSON in JS, not Lua) and the script replaces the string
   * only if it is unchanged.
   *
   * @example
   * ```ts
   * const result = await store.save(id, { ...change, expectedVersion: record.version, deadline: Date.now() + 2000 })
   * if (!result.ok && result.reason === 'conflict') retryOnto(result.current)
   * ```
   */
  save(id: string, change: SessionChange): Promise<SaveResult> {
    if (!isValidSessionId(id))
      return Promise.reject(
        new TypeError(`RedisStore: save needs a valid session id, got ${JSON.stringify(id)}`),
      )
    const key = this.#key(id)
    const start = Date.now()
    const until =
      change.deadline === undefined
        ? start + this.#timeout
        : Math.min(change.deadline, start + this.#timeout)
    const applyBy = until - this.#margin
    if (applyBy <= start) {
      return Promise.reject(
        new StoreError(`RedisStore: save of ${key} was not sent: its deadline had passed`, {
          code: 'ETIMEDOUT',
        }),
      )
    }
    return this.#call(
      'save of',
      key,
      until,
      () => saveSteps(this.#context, id, key, change, String(applyBy)),
      until - start,
    )
  }

  /**
   * Sets the idle expiry of an existing session (and its key's TTL); never creates one.
   *
   * @example
   * ```ts
   * await store.touch(id, Date.now() + 3_600_000)
   * ```
   */
  async touch(id: string, expiresAt: number): Promise<void> {
    if (!isValidSessionId(id)) return
    const now = Date.now()
    await this.#call('touch of', this.#key(id), now + this.#timeout, async () => {
      const args = [String(expiresAt), String(now)]
      let reply = await this.#script(TOUCH_SCRIPT, id, args)
      // A renewed id within its grace answers with the id to touch instead.
      for (let hop = 0; typeof reply === 'string' && hop < MAX_HOPS; hop++)
        reply = await this.#script(TOUCH_SCRIPT, reply, args)
    })
  }

  /**
   * Removes the session, then its entry in its owner's index (a second command, because on a
   * cluster the index is in another slot; a crash between the two leaves only a dead id,
   * which `listByUser` prunes).
   *
   * @example
   * ```ts
   * await store.destroy(id)
   * ```
   */
  async destroy(id: string): Promise<void> {
    if (!isValidSessionId(id)) return
    const key = this.#key(id)
    const now = Date.now()
    await this.#call('destroy of', key, now + this.#timeout, async () => {
      // An old id within its grace is removed and the call follows it to the renewed session.
      for (let hop = 0, at = id; hop <= MAX_HOPS; hop++) {
        const reply = asReply(await this.#script(DESTROY_SCRIPT, at, [String(now), '0', '']), key)
        if (reply[0] !== 'forward') {
          if (reply[1]) await this.#users.remove(reply[1], [at])
          return
        }
        at = reply[1]!
      }
    })
  }

  /**
   * Ids of the user's live sessions. Ids whose session is gone are removed from the index.
   * An id whose session now belongs to someone else is left out but kept in the set until
   * that session ends: removing it could race with the session being given back to this user.
   *
   * @example
   * ```ts
   * const devices = await store.listByUser(user.id)
   * ```
   */
  async listByUser(userId: string): Promise<string[]> {
    const userKey = this.#userKey(userId)
    const now = Date.now()
    return this.#call('listByUser of', userKey, now + this.#timeout, () =>
      listUserSessions(this.#context, userId, now),
    )
  }

  /**
   * Signs the user out everywhere: destroys each session the user owns and resolves to how
   * many there were. A session logged in after this call started is a new login and stays.
   *
   * @example
   * ```ts
   * app.post('/account/password', async (req, res) => {
   *   await store.destroyByUser(req.session.accountId)
   * })
   * ```
   */
  async destroyByUser(userId: string): Promise<number> {
    const userKey = this.#userKey(userId)
    const now = Date.now()
    return this.#call('destroyByUser of', userKey, now + this.#timeout, () =>
      destroyUserSessions(this.#context, userId, now),
    )
  }

  /**
   * Gives the session a new id, keeping its data, version, owner, created time and expiry; the
   * old id forwards to it for `graceMs` (never past the session's expiry). One atomic script on
   * a single server; on a cluster, a mark, a copy and a version-checked move (see
   * redis/renew.ts).
   *
   * @example
   * ```ts
   * const result = await store.renew(oldId, randomUUID(), { now: Date.now(), graceMs: 30_000 })
   * ```
   */
  renew(oldId: string, newId: string, options: RenewOptions): Promise<RenewResult> {
    if (!isValidSessionId(oldId)) return Promise.resolve({ ok: false, reason: 'gone' })
    if (!isValidSessionId(newId) || newId === oldId)
      return Promise.reject(
        new TypeError(
          `RedisStore: renew needs a valid new session id, got ${JSON.stringify(newId)}`,
        ),
      )
    const key = this.#key(oldId)
    const until = Date.now() + this.#timeout
    return this.#call('renewal of', key, until, () =>
      renewSession(this.#renewal(), oldId, newId, options, until - this.#margin),
    )
  }

  #renewal = (): RenewalContext => ({
    store: this,
    redis: this.#redis,
    users: this.#users,
    key: (id) => this.#key(id),
    userKey: (userId) => this.#userKey(userId),
    legacyPrefix: this.#legacy.legacyPrefix,
  })

  /**
   * Reports `destroyByUser` calls, and sessions a load found ended: past the absolute timeout
   * at its touch, or past their expiry on the app's clock before Redis's TTL removed them.
   * Redis deletes a key at its TTL without telling anyone, so a session that simply idles out
   * is not reported (see docs/events.md).
   *
   * @example
   * ```ts
   * const stop = store.onLifecycle((notice) => console.log(notice.type))
   * ```
   */
  onLifecycle(listener: StoreNoticeListener): () => void {
    return this.#notices.add(listener)
  }

  /**
   * Number of live sessions under the prefix (and legacy sessions, with `legacyPrefix`),
   * counted with SCAN on every master.
   *
   * @example
   * ```ts
   * metrics.gauge('sessions', await store.count())
   * ```
   */
  async count(): Promise<number> {
    let total = 0
    await scanSessions(this.#scanning, (_node, keys) => {
      total += keys.length
    })
    return total
  }

  /**
   * Removes every session and user index under the prefix (and legacy sessions, with
   * `legacyPrefix`), with SCAN and UNLINK on every master. Keys of other shapes are left alone.
   *
   * @example
   * ```ts
   * afterAll(() => store.clear())
   * ```
   */
  async clear(): Promise<void> {
    await scanSessions(
      this.#scanning,
      async (node, keys) => {
        if (keys.length === 0) return
        // One UNLINK per key, sent together: on a cluster, keys of one node live in different
        // slots.
        await this.#call('clear of', `${this.#prefix}*`, Date.now() + this.#timeout, () =>
          Promise.all(keys.map((key) => node.command(['UNLINK', key]))),
        )
      },
      true,
    )
  }

  /** The client belongs to the caller, so there is nothing to release. */
  async close(): Promise<void> {}

  #key(id: string): string {
    return this.#prefix + id
  }

  #userKey(userId: string): string {
    return `${this.#prefix}user:${userId}`
  }

  /** Runs `script` on the session's key, with the legacy key too when that is on. */
  #script(script: Script, id: string, args: string[]): Promise<unknown> {
    const keys = [this.#key(id)]
    const legacy = this.#legacy.keys(id)
    if (legacy.length > 0) keys.push(...legacy)
    return this.#redis.script(script, keys, args)
  }

  /** Runs `work` under the guard: settled by `until`, failing at once while Redis is down. */
  #call<T>(
    what: string,
    key: string,
    until: number,
    work: () => Promise<T>,
    ms = this.#timeout,
  ): Promise<T> {
    return this.#guard.run(what, key, until, ms, work)
  }
}
