/**
 * The per-user index of RedisStore and `maxSessionsPerUser` on it.
 *
 * The index at `prefix + 'user:' + userId` is a set of session ids. The first sign-in under a
 * limit turns it into a sorted set (same members) whose score is the deadline (epoch ms, Redis's
 * clock) of the save that linked the member, or 0 once that save landed: the id is added before
 * the session names its owner (another key, maybe another cluster slot), so a member whose
 * session is not there yet may be a sign-in still in flight. Such a member is counted, never
 * evicted, and removed only once its save can no longer land. Every other command here reads
 * either type, so a store without a limit keeps the plain set and its round trips.
 *
 * The count, the choice of whom to evict and the link are one script on the index key, so
 * concurrent sign-ins of one user run one at a time there, on a single server and on a cluster
 * alike: that script is the decision, and the index is its record. The sessions themselves live
 * in other keys (other slots on a cluster), so they are ended in two steps, mark then delete:
 * 1. The script marks each evicted member with the score -1 (evicted), in the same step as the
 *    decision. From then on no count, `listByUser` or eviction sees it.
 * 2. Each evicted session is destroyed (its own key), and only then is its mark removed. The
 *    sign-in's own save waits for this, so the new session is never served while an evicted
 *    one still is; a late save of an evicted session finds it gone.
 * If step 2 fails (Redis unreachable, the process dies), the sign-in fails too, unsaved, and the
 * mark stays: the next `listByUser`, `destroyByUser` or sign-in of that user destroys every
 * marked session before it does anything else. So an evicted session is never counted, listed
 * or linked again, and is destroyed by the next operation on its user at the latest.
 */
import { StoreError, isValidSessionId } from '../../lib/store.js'
import type { UserLimit } from '../../lib/user-limit.js'
import type { RedisConnection } from './client.js'
import { asReply, unexpected } from './records.js'
import { script, type Script } from './scripts.js'

/**
 * link(KEYS[1] = index, id, applyBy, max, 'refuse' | 'evict', nLive, liveId, createdAt, ...,
 *      deadId, scoreRead, ...) -> {'ok'} | {'refused'} | {'evicted', id, ...} | {'busy'}
 *      | {'wrongtype', type}
 * Live ids are the caller's reading of sessions that exist, are unexpired and name this user;
 * dead ids are the rest it read, each with the score it read before reading the session: one
 * whose score changed since (its save landed and settled) is not removed. 'busy': the user is
 * at the limit and only sign-ins still in flight could make room; the caller reads again.
 */
const LINK = script(`
local key = KEYS[1]
local id = ARGV[1]
local max = tonumber(ARGV[3])
local n_live = tonumber(ARGV[5])
local t = redis.call('TYPE', key)['ok']
if t == 'set' then
  local members = redis.call('SMEMBERS', key)
  redis.call('DEL', key)
  for i = 1, #members, 1000 do
    local batch = {}
    for j = i, math.min(i + 999, #members) do
      batch[#batch + 1] = 0
      batch[#batch + 1] = members[j]
    end
    redis.call('ZADD', key, unpack(batch))
  end
elseif t ~= 'zset' and t ~= 'none' then
  return { 'wrongtype', t }
end
local time = redis.call('TIME')
local server_now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
for i = 6 + 2 * n_live, #ARGV, 2 do
  local score = tonumber(redis.call('ZSCORE', key, ARGV[i]))
  if score and score == tonumber(ARGV[i + 1]) and score >= 0 and score < server_now then
    redis.call('ZREM', key, ARGV[i])
  end
end
local live = {}
for i = 6, 5 + 2 * n_live, 2 do live[ARGV[i]] = tonumber(ARGV[i + 1]) end
local count, evictable = 0, {}
-- Members scored -1 are evicted already (their destruction may still be under way).
local members = redis.call('ZRANGEBYSCORE', key, 0, '+inf')
for i = 1, #members do
  local m = members[i]
  if m ~= id then
    count = count + 1
    if live[m] then evictable[#evictable + 1] = m end
  end
end
if count < max then
  redis.call('ZADD', key, ARGV[2], id)
  return { 'ok' }
end
if ARGV[4] == 'refuse' then return { 'refused' } end
table.sort(evictable, function(a, b)
  if live[a] ~= live[b] then return live[a] < live[b] end
  return a < b
end)
local need = count - max + 1
if #evictable < need then return { 'busy' } end
local r = { 'evicted' }
for i = 1, need do
  redis.call('ZADD', key, -1, evictable[i])
  r[#r + 1] = evictable[i]
end
redis.call('ZADD', key, ARGV[2], id)
return r
`)

export const LINK_SCRIPT: Script = LINK

/**
 * settle(KEYS[1] = index, id) -> 1 | 0: a member in flight (score > 0) becomes settled (0).
 * Nothing else changes: a member an eviction marked (-1) meanwhile stays marked, and a plain
 * set has no members in flight.
 */
const SETTLE = script(`
local key = KEYS[1]
if redis.call('TYPE', KEYS[1])['ok'] ~= 'zset' then return 0 end
local score = tonumber(redis.call('ZSCORE', key, ARGV[1]))
if not score or score <= 0 then return 0 end
redis.call('ZADD', key, 0, ARGV[1])
return 1
`)

/** The user index commands of one store: a set, or a sorted set once a limit applied. */
export class UserIndexKeys {
  constructor(
    readonly redis: RedisConnection,
    readonly keyOf: (userId: string) => string,
    readonly sessionKey: (id: string) => string,
    readonly destroy: (id: string, userId: string) => Promise<unknown>,
  ) {}

  /** The user's listed ids, without the evicted ones (see {@link UserIndexKeys.current}). */
  members(userId: string): Promise<string[]> {
    const key = this.keyOf(userId)
    return this.#either(key, ['SMEMBERS', key], ['ZRANGEBYSCORE', key, '0', '+inf']) as Promise<
      string[]
    >
  }

  /**
   * The user's listed ids, after destroying every session an eviction marked and did not get to
   * destroy (step 2 of the file's comment). A plain set has no marks: one round trip as before.
   */
  async current(userId: string): Promise<string[]> {
    return [...(await this.#scored(userId)).keys()]
  }

  /** {@link UserIndexKeys.current}, with each id's score (0 in a plain set). */
  async #scored(userId: string): Promise<Map<string, string>> {
    const key = this.keyOf(userId)
    try {
      const ids = (await this.redis.command(key, ['SMEMBERS', key])) as string[]
      return new Map(ids.map((id) => [id, '0']))
    } catch (err) {
      if (!isWrongType(err)) throw err
    }
    // Flat [id, score, ...], or pairs [[id, score], ...] from a client that groups them.
    const reply = (await this.redis.command(key, ['ZRANGE', key, '0', '-1', 'WITHSCORES'])) as (
      string | number | (string | number)[]
    )[]
    const entries = reply.flat()
    const ids = new Map<string, string>()
    const evicted: string[] = []
    for (let i = 0; i + 1 < entries.length; i += 2) {
      if (Number(entries[i + 1]) < 0) evicted.push(String(entries[i]))
      else ids.set(String(entries[i]), String(entries[i + 1]))
    }
    if (evicted.length > 0) await this.#finish(userId, evicted)
    return ids
  }

  /** Destroys evicted sessions, then drops their marks. */
  async #finish(userId: string, evicted: string[]): Promise<void> {
    await Promise.all(evicted.map((other) => this.#destroyFollowing(other, userId)))
    const key = this.keyOf(userId)
    await this.redis.command(key, ['ZREM', key, ...evicted])
  }

  /** Adds a member; in a sorted set, pending until `applyBy`. */
  add(userId: string, id: string, applyBy: string): Promise<unknown> {
    const key = this.keyOf(userId)
    return this.#either(key, ['SADD', key, id], ['ZADD', key, applyBy, id])
  }

  remove(userId: string, ids: string[]): Promise<unknown> {
    const key = this.keyOf(userId)
    return this.#either(key, ['SREM', key, ...ids], ['ZREM', key, ...ids])
  }

  /**
   * Links `id` to the user under `limit`: 'refused', or the ids it evicted (and destroyed).
   * Retries while only sign-ins in flight could make room, until `applyBy`.
   */
  async link(
    userId: string,
    id: string,
    limit: UserLimit,
    applyBy: string,
  ): Promise<'refused' | string[]> {
    const key = this.keyOf(userId)
    for (let attempt = 1; ; attempt++) {
      // Scores first, sessions second: a member read as dead is removed only if its score is
      // still the one read before its session (so its save had not just landed and settled).
      const scores = await this.#scored(userId)
      const ids = [...scores.keys()]
      const states = await Promise.all(
        ids.map((other) => {
          if (other === id || !isValidSessionId(other)) return null
          const sessionKey = this.sessionKey(other)
          return (
            this.redis.command(sessionKey, [
              'HMGET',
              sessionKey,
              '@userId',
              '@expiresAt',
              '@createdAt',
            ]) as Promise<(string | null)[]>
          ).catch((err: unknown) => {
            // An old id forwarding to its renewed session: not a session of its own.
            if (isWrongType(err)) return null
            throw err
          })
        }),
      )
      const now = Date.now()
      const live: string[] = []
      const dead: string[] = []
      ids.forEach((other, i) => {
        const state = states[i]
        if (other === id) return
        const createdAt = state?.[2]
        if (state?.[0] === userId && Number(state[1]) > now && typeof createdAt === 'string')
          live.push(other, createdAt)
        else dead.push(other, scores.get(other)!)
      })
      const args = [id, applyBy, String(limit.max), limit.onLimit === 'refuse' ? 'refuse' : 'evict']
      const reply = asReply(
        await this.redis.script(LINK, [key], [...args, String(live.length / 2), ...live, ...dead]),
        key,
      )
      switch (reply[0]) {
        case 'ok':
          return []
        case 'refused':
          return 'refused'
        case 'evicted': {
          // Decided and marked; if this fails, the next operation on the user's index finishes it.
          const evicted = reply.slice(1) as string[]
          try {
            await this.#finish(userId, evicted)
          } catch (err) {
            // This sign-in will not be saved: it need not count as in flight until its deadline.
            await this.remove(userId, [id]).catch(() => {})
            throw err
          }
          return evicted
        }
        case 'busy':
          if (Date.now() >= Number(applyBy))
            throw new StoreError(
              `RedisStore: sign-in to ${key} waited for other sign-ins of the user past its ` +
                `deadline; it was not saved`,
              { code: 'ETIMEDOUT' },
            )
          // Other sign-ins of this user are between their link and their save: let them land.
          await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(50, attempt)))
          break
        default:
          throw unexpected(key, reply)
      }
    }
  }

  /** After the save that linked `id` landed, it no longer counts as in flight. */
  async settle(userId: string, id: string): Promise<void> {
    const key = this.keyOf(userId)
    await this.redis.script(SETTLE, [key], [id])
  }

  /**
   * Destroys the session `id` of `userId`, and if `id` was renewed meanwhile, the session it
   * moved to: an evicted session must not live on under a new id.
   */
  async #destroyFollowing(id: string, userId: string): Promise<void> {
    let at = id
    for (let hop = 0; hop < 8; hop++) {
      const reply = await this.destroy(at, userId)
      if (!Array.isArray(reply) || reply[0] !== 'forward' || typeof reply[1] !== 'string') return
      at = reply[1]
    }
  }

  /** Runs the set form of a command, and the sorted-set form on a WRONGTYPE reply. */
  async #either(key: string, ofSet: string[], ofSortedSet: string[]): Promise<unknown> {
    try {
      return await this.redis.command(key, ofSet)
    } catch (err) {
      if (!isWrongType(err)) throw err
      return this.redis.command(key, ofSortedSet)
    }
  }
}

/**
 * Whether `err` is Redis's WRONGTYPE reply: the key holds another type than the command reads.
 *
 * @example
 * ```ts
 * const state = await redis.command(key, ['HMGET', key, '@userId']).catch((err) => {
 *   if (isWrongType(err)) return null // an old id forwarding to its renewed session
 *   throw err
 * })
 * ```
 */
export function isWrongType(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('WRONGTYPE')
}
