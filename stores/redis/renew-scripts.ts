/**
 * The Lua scripts behind RedisStore's id renewal (see renew.ts). An old id within its grace
 * window is a sorted set at its own key holding one member, the new id, scored by the end of the
 * grace (epoch ms, the app's clock); the session scripts in scripts.ts follow it.
 */
import { script } from './scripts.js'

const HELPERS = `
local function num(n) return string.format('%.17g', n) end
local function forward_of(key, now)
  local f = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if f[1] and tonumber(f[2]) > now then return f[1] end
  return false
end
-- The reply to a call on a key that holds no session hash: a forward to follow, or nothing.
-- False for a hash, the session itself.
local function not_a_session(key, now)
  local t = redis.call('TYPE', key)['ok']
  if t == 'hash' then return false end
  if t == 'zset' then
    local to = forward_of(key, now)
    if to then return { 'renewed', to } end
  end
  return { 'gone' }
end
-- Turns the old key into a forward to new_id until min(now + grace, expires_at).
local function forward(key, new_id, now, grace, expires_at)
  local grace_end = math.min(now + grace, expires_at)
  redis.call('UNLINK', key)
  redis.call('ZADD', key, num(grace_end), new_id)
  redis.call('PEXPIREAT', key, num(math.ceil(grace_end)))
end
`

/**
 * renew(KEYS[1] = old, KEYS[2] = new, KEYS[3] = owner's index when ARGV[3] names one;
 *       now, graceMs, owner | '', oldId, newId)
 * -> {'ok'} | {'renewed', newId} | {'gone'} | {'taken'} | {'owner', owner} | {'corrupt', detail}
 *
 * A single server only: the whole move is one atomic step. RENAME keeps the hash and its TTL;
 * the old key becomes the forward; the owner's index lists the new id instead of the old one.
 * 'owner': the session has another owner than the caller named, so the caller calls again with
 * that owner's index as KEYS[3] (every key a script touches is named in KEYS). Nothing changes
 * before every check has passed.
 */
export const RENEW_SCRIPT = script(`${HELPERS}
local old, new = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local other = not_a_session(old, now)
if other then return other end
local m = redis.call('HMGET', old, '@expiresAt', '@userId', '@version')
local expires_at = tonumber(m[1])
if not expires_at or not tonumber(m[3]) then
  return { 'corrupt', 'metadata field @version or @expiresAt is missing or not a number' }
end
if expires_at <= now then return { 'gone' } end
if redis.call('EXISTS', new) == 1 then return { 'taken' } end
local owner = m[2] or ''
if owner ~= ARGV[3] then return { 'owner', owner } end
redis.call('RENAME', old, new)
redis.call('HSET', new, '@renewedAt', ARGV[1])
forward(old, ARGV[5], now, tonumber(ARGV[2]), expires_at)
if owner ~= '' then
  local index = KEYS[3]
  local it = redis.call('TYPE', index)['ok']
  if it == 'zset' then
    local score = redis.call('ZSCORE', index, ARGV[4]) or '0'
    redis.call('ZREM', index, ARGV[4])
    redis.call('ZADD', index, score, ARGV[5])
  elseif it == 'set' or it == 'none' then
    redis.call('SREM', index, ARGV[4])
    redis.call('SADD', index, ARGV[5])
  end
end
return { 'ok' }
`)

/**
 * place(KEYS[1] = new, applyBy, expiresAt, field, value, ...) -> {'ok'} | {'taken'} | {'late'}
 *
 * Cluster step 1, in the new id's slot: writes the copy of the session, unless the id is in
 * use, or Redis's clock is past `applyBy` (the caller has given up, and would not commit).
 */
export const PLACE_SCRIPT = script(`${HELPERS}
local key = KEYS[1]
local time = redis.call('TIME')
local server_now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if server_now > tonumber(ARGV[1]) then return { 'late' } end
if redis.call('EXISTS', key) == 1 then return { 'taken' } end
for i = 3, #ARGV, 1000 do
  redis.call('HSET', key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('PEXPIREAT', key, num(math.ceil(tonumber(ARGV[2]))))
return { 'ok' }
`)

/**
 * mark(KEYS[1] = old, now, newId, applyBy)
 * -> {'hash', field, value, ...} | {'busy'} | {'renewed', newId} | {'gone'} | {'legacy'}
 *
 * Cluster step 1, in the old id's slot: marks the session as moving to newId until `applyBy`
 * (fields `@movingTo`, `@movingUntil`) and replies with its fields, without the mark. While the
 * mark holds, the save script answers 'moving' and the saver waits, so the copy stays the
 * session's latest state. 'busy': another renewal holds the mark. A mark past `@movingUntil` is
 * ignored (its renewal gave up or died), so it never locks the session for longer.
 */
export const MARK_SCRIPT = script(`${HELPERS}
local key = KEYS[1]
local now = tonumber(ARGV[1])
local other = not_a_session(key, now)
if other then return other end
local m = redis.call('HMGET', key, '@expiresAt', '@movingUntil')
local expires_at = tonumber(m[1])
if not expires_at or expires_at <= now then return { 'gone' } end
if m[2] and tonumber(m[2]) > now then return { 'busy' } end
local h = redis.call('HGETALL', key)
redis.call('HSET', key, '@movingTo', ARGV[2], '@movingUntil', ARGV[3])
local r = { 'hash' }
for i = 1, #h, 2 do
  if h[i] ~= '@movingTo' and h[i] ~= '@movingUntil' then
    r[#r + 1] = h[i]; r[#r + 1] = h[i + 1]
  end
end
return r
`)

/**
 * commit(KEYS[1] = old, now, graceMs, version, newId)
 * -> {'ok', expiresAt} | {'changed'} | {'renewed', newId} | {'gone'}
 *
 * Cluster step 3, in the old id's slot: replaces the session with the forward only if it still
 * carries this renewal's mark and the version copied. 'changed': the mark ran out and a save
 * landed (or another renewal marked it); the caller drops its copy and starts again. Replies
 * with the session's expiry at this moment, which a touch (no version bump) may have moved.
 */
export const COMMIT_SCRIPT = script(`${HELPERS}
local key = KEYS[1]
local now = tonumber(ARGV[1])
local other = not_a_session(key, now)
if other then return other end
local m = redis.call('HMGET', key, '@version', '@expiresAt', '@movingTo')
local expires_at = tonumber(m[2])
if not expires_at or expires_at <= now then return { 'gone' } end
if m[1] ~= ARGV[3] or m[3] ~= ARGV[4] then return { 'changed' } end
forward(key, ARGV[4], now, tonumber(ARGV[2]), expires_at)
return { 'ok', m[2] }
`)

/**
 * unmark(KEYS[1] = old, newId) -> 1 | 0: lifts this renewal's mark after it failed, so saves
 * need not wait for the mark to run out.
 */
export const UNMARK_SCRIPT = script(`
local key = KEYS[1]
if redis.call('TYPE', key)['ok'] ~= 'hash' then return 0 end
if redis.call('HGET', key, '@movingTo') ~= ARGV[1] then return 0 end
redis.call('HDEL', key, '@movingTo', '@movingUntil')
return 1
`)

/**
 * catchUp(KEYS[1] = new, expiresAt) -> 1 | 0
 *
 * Cluster step 3: moves the renewed session's expiry to `expiresAt` if a touch of the old id
 * moved it later between the copy and the commit. Never creates, never moves it earlier.
 */
export const CATCH_UP_SCRIPT = script(`${HELPERS}
local key = KEYS[1]
local stored = tonumber(redis.call('HGET', key, '@expiresAt'))
local at = tonumber(ARGV[1])
if not stored or stored >= at then return 0 end
redis.call('HSET', key, '@expiresAt', ARGV[1])
redis.call('PEXPIREAT', key, num(math.ceil(at)))
return 1
`)
