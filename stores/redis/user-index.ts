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
 * concurrent sign-ins of one user run one at a time there. The evicted sessions are then
 * destroyed (each its own key) before this session is saved.
 */
import { StoreError, isValidSessionId } from '../../lib/store.js'
import type { UserLimit } from '../../lib/user-limit.js'
import type { RedisConnection } from './client.js'
import { asReply, unexpected } from './records.js'
import { script, type Script } from './scripts.js'

/**
 * link(KEYS[1] = index, id, applyBy, max, 'refuse' | 'evict', nLive, liveId, createdAt, ...,
 *      deadId, ...) -> {'ok'} | {'refused'} | {'evicted', id, ...} | {'busy'} | {'wrongtype', type}
 * Live ids are the caller's reading of sessions that exist, are unexpired and name this user;
 * dead ids are the rest it read. 'busy': the user is at the limit and only sign-ins still in
 * flight could make room; the caller reads again.
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
for i = 6 + 2 * n_live, #ARGV do
  local score = redis.call('ZSCORE', key, ARGV[i])
  if score and tonumber(score) < server_now then redis.call('ZREM', key, ARGV[i]) end
end
local live = {}
for i = 6, 5 + 2 * n_live, 2 do live[ARGV[i]] = tonumber(ARGV[i + 1]) end
local count, evictable = 0, {}
local members = redis.call('ZRANGE', key, 0, -1)
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
  redis.call('ZREM', key, evictable[i])
  r[#r + 1] = evictable[i]
end
redis.call('ZADD', key, ARGV[2], id)
return r
`)

export const LINK_SCRIPT: Script = LINK

/** The user index commands of one store: a set, or a sorted set once a limit applied. */
export class UserIndexKeys {
  constructor(
    readonly redis: RedisConnection,
    readonly keyOf: (userId: string) => string,
    readonly sessionKey: (id: string) => string,
    readonly destroy: (id: string, userId: string) => Promise<unknown>,
  ) {}

  members(userId: string): Promise<string[]> {
    const key = this.keyOf(userId)
    return this.#either(key, ['SMEMBERS', key], ['ZRANGE', key, '0', '-1']) as Promise<string[]>
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
      const ids = await this.members(userId)
      const states = await Promise.all(
        ids.map((other) => {
          if (other === id || !isValidSessionId(other)) return null
          const sessionKey = this.sessionKey(other)
          return this.redis.command(sessionKey, [
            'HMGET',
            sessionKey,
            '@userId',
            '@expiresAt',
            '@createdAt',
          ]) as Promise<(string | null)[]>
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
        else dead.push(other)
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
          const evicted = reply.slice(1) as string[]
          await Promise.all(evicted.map((other) => this.destroy(other, userId)))
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
    await this.redis.command(key, ['ZADD', key, 'XX', '0', id])
  }

  /** Runs the set form of a command, and the sorted-set form on a WRONGTYPE reply. */
  async #either(key: string, ofSet: string[], ofSortedSet: string[]): Promise<unknown> {
    try {
      return await this.redis.command(key, ofSet)
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('WRONGTYPE')) throw err
      return this.redis.command(key, ofSortedSet)
    }
  }
}
