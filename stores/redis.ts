import type { Cluster, Redis } from 'ioredis'
import type { CookieOverrides, LoadOptions, SaveResult, SessionChange, SessionRecord, Store } from '../lib/store.js'
import { StoreError, isValidSessionId } from '../lib/store.js'
import { rejectUnknownKeys } from '../lib/check-options.js'
import { fromBlob } from '../lib/compat/blob.js'
import { DESTROY, LOAD, SAVE, TOUCH } from './redis-scripts.js'

/**
 * Options of {@link RedisStore}. Checked when the store is constructed: a bad value throws a
 * TypeError that says what to change.
 *
 * @example
 * ```ts
 * new RedisStore({ client: new Redis(url), prefix: 'myapp:sess:', timeout: 1000 })
 * new RedisStore({ client, prefix: 'sess:', legacyPrefix: 'sess:' }) // read connect-redis sessions too
 * ```
 */
export interface RedisStoreOptions {
  /**
   * An ioredis `Redis` or `Cluster`. The store never connects, quits or listens to it: attach
   * your own `client.on('error', ...)` (ioredis logs unhandled errors) and close it yourself.
   */
  client: Redis | Cluster
  /** Prefix of every key this store writes. Default `'sess:'`, as connect-redis. */
  prefix?: string
  /**
   * Read sessions that express-session + connect-redis wrote (a JSON string at
   * `legacyPrefix + id`) and convert each to a hash on its first save. Usually `'sess:'`.
   * On a Cluster it must equal `prefix`, so the conversion stays within one key.
   */
  legacyPrefix?: string
  /**
   * How long, in ms, one store call may take before it fails with a StoreError
   * (status 503, code `ETIMEDOUT`), for example while Redis is down. Default 2000.
   * `count` and `clear` apply it to each SCAN batch, since they walk the whole keyspace.
   */
  timeout?: number
}

/** Field, value, field, value... as HGETALL returns them, after a tag. */
type Reply = (string | null)[]
type ScriptFn = (numKeys: number, ...args: (string | number)[]) => Promise<unknown>
interface Scripts {
  concordSessionLoad: ScriptFn
  concordSessionSave: ScriptFn
  concordSessionTouch: ScriptFn
  concordSessionDestroy: ScriptFn
}

/** What connect-redis users pass, and what to do instead. */
const CONNECT_REDIS_HINTS = {
  ttl: "that is connect-redis's option; a session's lifetime follows its cookie here: set session({ cookie: { maxAge } }), and idleTimeout for browser-session cookies",
  disableTouch: "that is connect-redis's option; a read touches the session in the same round trip as its load, so there is nothing to disable",
  disableTTL: "that is connect-redis's option; every session key expires with the session",
  serializer: "that is connect-redis's option; each session key is stored as its own JSON text in a hash",
}

/** connect-redis's default ttl (1 day): the idle period of a legacy session without a maxAge. */
const LEGACY_IDLE = 86_400_000
/** A save retries after 'link' (index the new owner) and 'legacy' (convert); a few suffice. */
const MAX_SAVE_STEPS = 6
const SCAN_COUNT = 1000

/**
 * A session store on Redis or Redis Cluster, through ioredis.
 *
 * Layout: one hash per session at `prefix + id`. Each top-level session key is a field holding
 * its JSON text; metadata lives in fields starting with `@` (`@version`, `@createdAt`,
 * `@expiresAt`, `@idleTimeout`, `@cookie`, `@userId`), and a user key that starts with `@` gets
 * one more `@`, so the two never collide. The key expires at `@expiresAt` (PEXPIREAT).
 * A user's sessions are indexed in a set at `prefix + 'user:' + userId`.
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
 * StoreError (status 503) if Redis is unreachable, and works again when it returns. Data it
 * cannot read is a StoreError naming the key. The store adds no 'error' listener to the client:
 * attach your own.
 *
 * @example
 * ```ts
 * import Redis from 'ioredis'
 * import session from 'concord-session'
 * import { RedisStore } from 'concord-session/redis'
 *
 * const client = new Redis(process.env.REDIS_URL!)
 * client.on('error', (err) => console.error('redis', err.message))
 * app.use(session(new RedisStore({ client }), { secret: process.env.SESSION_SECRET! }))
 * ```
 */
export class RedisStore implements Store {
  readonly #client: Redis | Cluster
  readonly #scripts: Scripts
  readonly #prefix: string
  readonly #legacyPrefix: string | undefined
  readonly #timeout: number

  constructor(options: RedisStoreOptions) {
    const { client, prefix = 'sess:', legacyPrefix, timeout = 2000 } = options ?? ({} as RedisStoreOptions)
    rejectUnknownKeys('RedisStore', options ?? {}, ['client', 'prefix', 'legacyPrefix', 'timeout'], CONNECT_REDIS_HINTS)
    if (!client || typeof (client as { defineCommand?: unknown }).defineCommand !== 'function') {
      throw new TypeError('RedisStore: client must be an ioredis Redis or Cluster, e.g. new RedisStore({ client: new Redis(url) })')
    }
    if (clientKeyPrefix(client)) {
      throw new TypeError("RedisStore: the client has ioredis's keyPrefix set; remove it and pass the store's prefix option instead (SCAN does not apply keyPrefix)")
    }
    if (typeof prefix !== 'string' || prefix === '') {
      throw new TypeError(`RedisStore: prefix must be a non-empty string (so count() and clear() see only this store's keys), got ${JSON.stringify(prefix)}`)
    }
    if (legacyPrefix !== undefined && (typeof legacyPrefix !== 'string' || legacyPrefix === '')) {
      throw new TypeError(`RedisStore: legacyPrefix must be a non-empty string such as 'sess:', got ${JSON.stringify(legacyPrefix)}`)
    }
    if (legacyPrefix !== undefined && client.isCluster && legacyPrefix !== prefix) {
      throw new TypeError('RedisStore: on a Redis Cluster legacyPrefix must equal prefix, so each session converts in place within one key (one slot)')
    }
    if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0) {
      throw new TypeError(`RedisStore: timeout must be a positive number of ms, got ${String(timeout)}`)
    }
    this.#client = client
    this.#prefix = prefix
    this.#legacyPrefix = legacyPrefix
    this.#timeout = timeout
    // ioredis sends a defined script in full (EVAL) the first time on each connection and by
    // EVALSHA after that; if Redis lost its scripts (restart, SCRIPT FLUSH), the NOSCRIPT reply
    // makes it resend the script once. No SCRIPT LOAD step, and nothing to do after a restart.
    client.defineCommand('concordSessionLoad', { lua: LOAD })
    client.defineCommand('concordSessionSave', { lua: SAVE })
    client.defineCommand('concordSessionTouch', { lua: TOUCH })
    client.defineCommand('concordSessionDestroy', { lua: DESTROY })
    this.#scripts = client as unknown as Scripts
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
  async load(id: string, options: LoadOptions = {}): Promise<SessionRecord | null> {
    if (!isValidSessionId(id)) return null
    const key = this.#key(id)
    return this.#bounded('load of', key, async () => {
      const now = Date.now()
      const reply = await this.#scripts.concordSessionLoad(
        ...this.#keyArgs(id), now, options.touchAt ?? '', options.absoluteTimeout ?? '', LEGACY_IDLE,
      )
      if (reply === null) return null
      const tagged = asReply(reply, key)
      switch (tagged[0]) {
        case 'hash':
          return parseHash(key, tagged)
        case 'legacy':
          return parseLegacy(key, tagged[1]!, Number(tagged[2]), now)
        default:
          throw unexpected(key, tagged)
      }
    })
  }

  /**
   * Writes the changed keys against `expectedVersion` in one script call: the version check,
   * HDEL of the unset keys, HSET of the set keys and metadata, the version bump and the TTL.
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
   * const result = await store.save(id, { ...change, expectedVersion: record.version })
   * if (!result.ok && result.reason === 'conflict') retryOnto(result.current)
   * ```
   */
  async save(id: string, change: SessionChange): Promise<SaveResult> {
    if (!isValidSessionId(id)) throw new TypeError(`RedisStore: save needs a valid session id, got ${JSON.stringify(id)}`)
    const key = this.#key(id)
    return this.#bounded('save of', key, async () => {
      let linked = false
      let legacyRaw = ''
      let set = change.set
      let unset = change.unset
      if (change.expectedVersion === null && change.userId !== null) {
        await this.#link(change.userId, id)
        linked = true
      }
      for (let step = 0; step < MAX_SAVE_STEPS; step++) {
        const reply = asReply(
          await this.#scripts.concordSessionSave(...this.#keyArgs(id), ...saveArgs(change, set, unset, linked, legacyRaw)),
          key,
        )
        switch (reply[0]) {
          case 'ok':
            return { ok: true, version: Number(reply[1]) }
          case 'gone':
            return { ok: false, reason: 'gone' }
          case 'conflict':
            return { ok: false, reason: 'conflict', current: parseHash(key, reply) }
          case 'link':
            await this.#link(change.userId!, id)
            linked = true
            break
          case 'legacy': {
            const current = parseLegacy(key, reply[1]!, Number(reply[2]), Date.now())
            // A legacy session is version 1; its first save writes version 2.
            if (change.expectedVersion !== 1) return { ok: false, reason: 'conflict', current }
            legacyRaw = reply[1]!
            // The whole converted session, with this save's change on top. A null prototype keeps
            // a key such as "__proto__" an ordinary key.
            set = Object.create(null) as Record<string, string>
            for (const [name, value] of Object.entries(current.data)) set[name] = value
            for (const name of change.unset) delete set[name]
            for (const [name, value] of Object.entries(change.set)) set[name] = value
            unset = []
            break
          }
          default:
            throw unexpected(key, reply)
        }
      }
      throw new StoreError(`RedisStore: save of ${key} did not settle in ${MAX_SAVE_STEPS} steps (it kept changing)`, { code: 'EBUSY' })
    })
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
    const key = this.#key(id)
    await this.#bounded('touch of', key, () => this.#scripts.concordSessionTouch(...this.#keyArgs(id), expiresAt, Date.now()))
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
    await this.#bounded('destroy of', key, async () => {
      const reply = asReply(await this.#scripts.concordSessionDestroy(...this.#keyArgs(id), Date.now(), '0', ''), key)
      if (reply[1]) await this.#client.srem(this.#userKey(reply[1]), id)
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
    return this.#bounded('listByUser of', userKey, async () => {
      const ids = await this.#client.smembers(userKey)
      const now = Date.now()
      const states = await Promise.all(
        ids.map((id) => (isValidSessionId(id) ? this.#client.hmget(this.#key(id), '@userId', '@expiresAt') : null)),
      )
      const live: string[] = []
      const dead: string[] = []
      ids.forEach((id, i) => {
        const state = states[i]
        if (!state || state[1] === null || Number(state[1]) <= now) dead.push(id)
        else if (state[0] === userId) live.push(id)
      })
      if (dead.length > 0) await this.#client.srem(userKey, ...dead)
      return live
    })
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
    return this.#bounded('destroyByUser of', userKey, async () => {
      const ids = await this.#client.smembers(userKey)
      const now = Date.now()
      const replies = await Promise.all(
        ids.map(async (id) => {
          if (!isValidSessionId(id)) return 'none'
          const reply = asReply(await this.#scripts.concordSessionDestroy(...this.#keyArgs(id), now, '1', userId), this.#key(id))
          return reply[0]
        }),
      )
      // Sessions now owned by someone else ('kept') stay listed until they end; see listByUser.
      const removed = ids.filter((_, i) => replies[i] !== 'kept')
      if (removed.length > 0) await this.#client.srem(userKey, ...removed)
      return replies.filter((r) => r === 'destroyed').length
    })
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
    await this.#scanSessions((_node, keys) => {
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
    await this.#scanSessions(async (node, keys) => {
      if (keys.length === 0) return
      // One UNLINK per key: on a cluster, keys of one node still live in different slots.
      const pipeline = node.pipeline()
      for (const key of keys) pipeline.unlink(key)
      const results = (await this.#bounded('clear of', `${this.#prefix}*`, () => pipeline.exec())) ?? []
      const failed = results.find(([err]) => err)
      if (failed) throw toStoreError(failed[0], 'clear of', `${this.#prefix}*`)
    }, true)
  }

  /** The client belongs to the caller, so there is nothing to release. */
  async close(): Promise<void> {}

  #key(id: string): string {
    return this.#prefix + id
  }

  #userKey(userId: string): string {
    return `${this.#prefix}user:${userId}`
  }

  /** numkeys and KEYS for a script: the session key, and the legacy key when that is on. */
  #keyArgs(id: string): [number, ...string[]] {
    const key = this.#key(id)
    return this.#legacyPrefix === undefined ? [1, key] : [2, key, this.#legacyPrefix + id]
  }

  #link(userId: string, id: string): Promise<number> {
    return this.#client.sadd(this.#userKey(userId), id)
  }

  /**
   * Runs `work` and fails with a StoreError after `timeout` ms. ioredis keeps commands queued
   * while disconnected, so without this a request would wait for the reconnect.
   */
  async #bounded<T>(what: string, key: string, work: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const running = work()
    // After a timeout nobody awaits `running`; its late failure must not become unhandled.
    running.catch(() => {})
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new StoreError(`RedisStore: ${what} ${key} timed out after ${this.#timeout} ms (is Redis reachable?)`, { code: 'ETIMEDOUT' })),
        this.#timeout,
      )
    })
    try {
      return await Promise.race([running, deadline])
    } catch (err) {
      throw toStoreError(err, what, key)
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Calls `onKeys` with batches of session keys (and, with `withIndexes`, user index keys)
   * found by SCAN on each master. Keys are checked by shape, so unrelated keys that share
   * the prefix are never counted or removed.
   */
  async #scanSessions(onKeys: (node: Redis, keys: string[]) => void | Promise<void>, withIndexes = false): Promise<void> {
    const prefix = this.#prefix
    const legacy = this.#legacyPrefix
    const isSession = (key: string, from: string) => isValidSessionId(key.slice(from.length))
    for (const node of await this.#masters()) {
      if (withIndexes) {
        // Sessions, indexes, and legacy strings when they share the prefix: everything of ours.
        await this.#scan(node, prefix, undefined, (keys) =>
          onKeys(node, keys.filter((k) => isSession(k, prefix) || k.startsWith(`${prefix}user:`))),
        )
      } else {
        await this.#scan(node, prefix, 'hash', (keys) => onKeys(node, keys.filter((k) => isSession(k, prefix))))
        if (legacy === prefix) {
          await this.#scan(node, prefix, 'string', (keys) => onKeys(node, keys.filter((k) => isSession(k, prefix))))
        }
      }
      if (legacy !== undefined && legacy !== prefix) {
        await this.#scan(node, legacy, 'string', (keys) => onKeys(node, keys.filter((k) => isSession(k, legacy))))
      }
    }
  }

  async #scan(node: Redis, prefix: string, type: string | undefined, onKeys: (keys: string[]) => void | Promise<void>): Promise<void> {
    const pattern = `${escapeGlob(prefix)}*`
    let cursor = '0'
    do {
      const [next, keys] = await this.#bounded('scan of', pattern, async () =>
        type === undefined
          ? node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT)
          : node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT, 'TYPE', type),
      )
      cursor = next
      await onKeys(keys)
    } while (cursor !== '0')
  }

  /** The nodes that hold data: the client itself, or every master of the cluster. */
  async #masters(): Promise<Redis[]> {
    const client = this.#client
    if (!client.isCluster) return [client as Redis]
    const cluster = client as Cluster
    if (cluster.status !== 'ready') {
      // The slot map (and so the list of masters) is known once the cluster is ready.
      await this.#bounded('connecting to', 'the cluster', () => new Promise<void>((resolve) => cluster.once('ready', () => resolve())))
    }
    return cluster.nodes('master')
  }
}

function saveArgs(change: SessionChange, set: Record<string, string>, unset: string[], linked: boolean, legacyRaw: string): (string | number)[] {
  const names = Object.keys(set)
  const args: (string | number)[] = [
    change.expectedVersion ?? '',
    Date.now(),
    change.createdAt,
    change.expiresAt,
    change.idleTimeout,
    JSON.stringify(change.cookie),
    change.userId === null ? '0' : '1',
    change.userId ?? '',
    linked ? '1' : '0',
    legacyRaw,
    names.length,
  ]
  for (const name of names) args.push(toField(name), set[name]!)
  for (const name of unset) args.push(toField(name))
  return args
}

/** A user key as a hash field: one more "@" in front of a key that starts with "@". */
function toField(name: string): string {
  return name.startsWith('@') ? `@${name}` : name
}

function asReply(reply: unknown, key: string): Reply {
  if (!Array.isArray(reply) || typeof reply[0] !== 'string') {
    throw new StoreError(`RedisStore: unexpected reply from Redis for ${key}: ${JSON.stringify(reply)}`, { code: 'EREDIS' })
  }
  return reply as Reply
}

function unexpected(key: string, reply: Reply): StoreError {
  if (reply[0] === 'wrongtype') return corrupt(key, `it is a Redis ${reply[1]}, not a session hash`)
  if (reply[0] === 'corrupt') return corrupt(key, String(reply[1]))
  return new StoreError(`RedisStore: unexpected reply from Redis for ${key}: ${JSON.stringify(reply[0])}`, { code: 'EREDIS' })
}

function corrupt(key: string, detail: string, cause?: unknown): StoreError {
  return new StoreError(`RedisStore: session ${key} holds data it cannot read: ${detail}`, { code: 'ECORRUPT', cause })
}

/** Parses a tagged HGETALL reply (`[tag, field, value, ...]`), checking every metadata field. */
function parseHash(key: string, reply: Reply): SessionRecord {
  // A null prototype keeps a key such as "__proto__" an ordinary key while filling it.
  const data: Record<string, string> = Object.create(null)
  const meta: Record<string, string> = Object.create(null)
  for (let i = 1; i + 1 < reply.length; i += 2) {
    const field = reply[i]!
    const value = reply[i + 1]!
    if (field.startsWith('@') && !field.startsWith('@@')) {
      meta[field] = value
      continue
    }
    try {
      JSON.parse(value)
    } catch (err) {
      throw corrupt(key, `field ${JSON.stringify(field)} is not JSON`, err)
    }
    data[field.startsWith('@') ? field.slice(1) : field] = value
  }

  const number = (field: string, check: (n: number) => boolean, what: string): number => {
    const raw = meta[field]
    const n = raw === undefined || raw.trim() === '' ? NaN : Number(raw)
    if (!check(n)) throw corrupt(key, `metadata field ${field} should be ${what}, found ${raw === undefined ? 'nothing' : JSON.stringify(raw)}`)
    return n
  }
  const record: SessionRecord = {
    data: { ...data },
    cookie: parseCookie(key, meta['@cookie']),
    createdAt: number('@createdAt', Number.isFinite, 'a time in epoch ms'),
    expiresAt: number('@expiresAt', Number.isFinite, 'a time in epoch ms'),
    idleTimeout: number('@idleTimeout', (n) => Number.isFinite(n) && n >= 0, 'a duration in ms'),
    version: number('@version', (n) => Number.isSafeInteger(n) && n >= 1, 'a positive integer'),
  }
  if (meta['@userId'] !== undefined) record.userId = meta['@userId']
  return record
}

function parseCookie(key: string, raw: string | undefined): CookieOverrides {
  if (raw === undefined) throw corrupt(key, 'metadata field @cookie is missing')
  let cookie: unknown
  try {
    cookie = JSON.parse(raw)
  } catch (err) {
    throw corrupt(key, 'metadata field @cookie is not JSON', err)
  }
  if (!isPlainObject(cookie)) throw corrupt(key, `metadata field @cookie should be a JSON object, found ${JSON.stringify(raw)}`)
  return cookie as CookieOverrides
}

/**
 * A session express-session + connect-redis wrote: `{ cookie: {...}, ...data }` as JSON, read
 * with the drop-in's codec for express-session's stored format (lib/compat/blob.ts), so there
 * is one reader of that format. A session the drop-in's adapter wrote keeps its owner, creation
 * time and cookie settings from its `__concord` field; one only express-session wrote counts as
 * created now, with its cookie's maxAge as its idle period. Either way the string is version 1:
 * the save that converts it checks the string itself, not a version inside it.
 */
function parseLegacy(key: string, raw: string, expiresAt: number, now: number): SessionRecord {
  let blob: unknown
  try {
    blob = JSON.parse(raw)
  } catch (err) {
    throw corrupt(key, 'the connect-redis session is not JSON', err)
  }
  let record: SessionRecord
  try {
    record = fromBlob(key, blob, now)
  } catch (err) {
    throw corrupt(key, 'the connect-redis session is not a session object', err)
  }
  return { ...record, version: 1, expiresAt: expiresAt > 0 ? expiresAt : record.expiresAt }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function toStoreError(err: unknown, what: string, key: string): StoreError {
  if (err instanceof StoreError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new StoreError(`RedisStore: ${what} ${key} failed: ${message}`, { cause: err, code: 'EREDIS' })
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}

function clientKeyPrefix(client: Redis | Cluster): string | undefined {
  const options = (client as { options?: { keyPrefix?: string; redisOptions?: { keyPrefix?: string } } }).options
  return options?.keyPrefix || options?.redisOptions?.keyPrefix || undefined
}
