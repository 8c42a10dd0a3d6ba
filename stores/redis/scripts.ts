/**
 * The Lua scripts behind RedisStore. Each runs atomically on the server and touches one session:
 * KEYS[1] is the session hash; KEYS[2], present only when legacy reading is on, is the
 * connect-redis string key for the same id (the same key name when the prefixes are equal).
 *
 * Hash fields: a user key is a field of the same name holding its JSON text; metadata fields
 * start with "@" (`@version`, `@createdAt`, `@expiresAt`, `@idleTimeout`, `@cookie`, `@userId`,
 * `@keyExpires`);
 * a user key that itself starts with "@" is stored with one more "@" in front. So "@x" is always
 * metadata, "@@x" is the user key "@x", and anything else is the user key as written.
 *
 * Times are epoch ms from the application's clock (passed in), so expiry decisions agree with
 * the rest of the app; the key's own TTL (PEXPIREAT) makes Redis forget it on time as well.
 *
 * Both clients run them the same way: EVALSHA, and EVAL once when Redis answers NOSCRIPT (after
 * a restart, a failover or SCRIPT FLUSH). So no SCRIPT LOAD step, and nothing to redo by hand.
 */
import { createHash } from 'node:crypto'

/** A Lua script and its SHA1, the name EVALSHA calls it by. */
export interface Script {
  readonly lua: string
  readonly sha: string
}

/** True if `err` is a NOSCRIPT reply: Redis does not know the script (restarted or flushed). */
export function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT')
}

export function script(lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') }
}

/** Shared helpers, prepended to every script. */
const PRELUDE = `
local function num(n) return string.format('%.17g', n) end
local function expire_at(key, at) redis.call('PEXPIREAT', key, num(math.ceil(at))) end
-- One call with list[from..to] as arguments, in slices that stay under Lua's stack limit.
local function in_chunks(command, key, list, from, to)
  for i = from, to, 1000 do
    redis.call(command, key, unpack(list, i, math.min(i + 999, to)))
  end
end
local function hash_reply(tag, key)
  local h = redis.call('HGETALL', key)
  local r = { tag }
  for i = 1, #h do r[i + 1] = h[i] end
  return r
end
-- The legacy string key for this id, if legacy reading is on and the session is still a string.
local function legacy_key(key, t)
  local lkey = KEYS[2]
  if not lkey then return nil end
  if lkey == key then
    if t == 'string' then return lkey end
    return nil
  end
  if t == 'none' and redis.call('TYPE', lkey)['ok'] == 'string' then return lkey end
  return nil
end
-- Keys with a lifetime of their own (field @keyExpires, JSON {key: epoch ms}): the expired
-- ones are deleted here, so a load drops them in its own round trip (no HEXPIRE, Redis 7.4+).
-- Returns the HGETALL reply without them. Unreadable JSON is left for the caller to name.
local function drop_expired_keys(key, h, now)
  local at_index
  for i = 1, #h, 2 do
    if h[i] == '@keyExpires' then at_index = i + 1; break end
  end
  if not at_index then return h end
  local ok, expires = pcall(cjson.decode, h[at_index])
  if not ok or type(expires) ~= 'table' then return h end
  local gone, fields, kept, any = {}, {}, {}, false
  for name, at in pairs(expires) do
    if type(name) == 'string' and type(at) == 'number' and at <= now then
      local field = name
      if string.sub(name, 1, 1) == '@' then field = '@' .. name end
      gone[field] = true
      fields[#fields + 1] = field
    else
      kept[name] = at
      any = true
    end
  end
  if #fields == 0 then return h end
  in_chunks('HDEL', key, fields, 1, #fields)
  local meta = nil
  if any then
    meta = cjson.encode(kept)
    redis.call('HSET', key, '@keyExpires', meta)
  else
    redis.call('HDEL', key, '@keyExpires')
  end
  local out = {}
  for i = 1, #h, 2 do
    local f = h[i]
    if f == '@keyExpires' then
      if meta then out[#out + 1] = f; out[#out + 1] = meta end
    elseif not gone[f] then
      out[#out + 1] = f; out[#out + 1] = h[i + 1]
    end
  end
  return out
end
-- An id renewed within its grace window is a sorted set at its key holding the new id, scored
-- by the end of the grace (epoch ms, app's clock). The new id, or false once the grace is over.
local function forward_of(key, now)
  local f = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if f[1] and tonumber(f[2]) > now then return f[1] end
  return false
end
-- {'legacy', raw JSON, expiresAt or -1 when the key has no TTL}
local function legacy_reply(lkey, now)
  local pttl = redis.call('PTTL', lkey)
  local at = -1
  if pttl > 0 then at = now + pttl end
  return { 'legacy', redis.call('GET', lkey), num(at) }
end
`

/**
 * load(KEYS, now, touchAt | '', absoluteTimeout | '', legacyIdle)
 * -> false | {'hash', field, value, ...} | {'legacy', raw, expiresAt} | {'wrongtype', type}
 *    | {'expired', userId or ''} | {'forward', newId}
 * 'forward': the id was renewed and is within its grace window; the caller loads newId.
 * With touchAt, the idle expiry moves to min(touchAt + idle, createdAt + absoluteTimeout),
 * as touchedExpiry() computes it; an expiry at or before now deletes the session and answers
 * 'expired' (Redis removes a key at its TTL silently, so this is seen only when the app's
 * clock or the absolute timeout ends a session before its TTL does).
 */
const LOAD = `${PRELUDE}
local key = KEYS[1]
local now = tonumber(ARGV[1])
local touch_at = tonumber(ARGV[2])
local absolute = tonumber(ARGV[3])
-- One HGETALL gives the metadata and the reply; pcall turns a non-hash key into an error
-- table instead of a failed script, so TYPE is asked only then.
local h = redis.pcall('HGETALL', key)
local t = 'none'
if h.err then
  t = redis.call('TYPE', key)['ok']
elseif #h > 0 then
  local expires_at, created_at, idle, expires_index, owner
  for i = 1, #h, 2 do
    local f = h[i]
    if f == '@expiresAt' then expires_at, expires_index = tonumber(h[i + 1]), i + 1
    elseif f == '@createdAt' then created_at = tonumber(h[i + 1])
    elseif f == '@idleTimeout' then idle = tonumber(h[i + 1])
    elseif f == '@userId' then owner = h[i + 1] end
  end
  local r = { 'hash' }
  -- Unreadable metadata: hand the record over untouched; the caller names what is wrong.
  if expires_at and created_at and idle then
    if expires_at <= now then
      redis.call('UNLINK', key)
      return { 'expired', owner or '' }
    end
    if touch_at then
      local touched = touch_at + idle
      if absolute then touched = math.min(touched, created_at + absolute) end
      if touched <= now then
        redis.call('UNLINK', key)
        return { 'expired', owner or '' }
      end
      h[expires_index] = num(touched)
      redis.call('HSET', key, '@expiresAt', h[expires_index])
      expire_at(key, touched)
    end
    h = drop_expired_keys(key, h, now)
  end
  for i = 1, #h do r[i + 1] = h[i] end
  return r
end
if t == 'zset' then
  local to = forward_of(key, now)
  if to then return { 'forward', to } end
  return false
end
local lkey = legacy_key(key, t)
if lkey then
  if touch_at then
    -- express-session's touch: the idle period is the cookie's maxAge, else connect-redis's ttl.
    local idle = tonumber(ARGV[4])
    local ok, sess = pcall(cjson.decode, redis.call('GET', lkey))
    if ok and type(sess) == 'table' and type(sess.cookie) == 'table'
      and type(sess.cookie.originalMaxAge) == 'number' and sess.cookie.originalMaxAge > 0 then
      idle = sess.cookie.originalMaxAge
    end
    expire_at(lkey, touch_at + idle)
    return { 'legacy', redis.call('GET', lkey), num(touch_at + idle) }
  end
  return legacy_reply(lkey, now)
end
if t == 'none' then return false end
return { 'wrongtype', t }
`

/**
 * save(KEYS, expectedVersion | '', now, createdAt, expiresAt, idleTimeout, cookieJSON,
 *      hasUser '0'|'1', userId, linked '0'|'1', legacyRaw | '', deadline | '',
 *      nSet, field, value, ..., unsetField, ...)
 * -> {'ok', version} | {'gone'} | {'conflict', field, value, ...} | {'link'} | {'late', serverNow}
 *    | {'legacy', raw, expiresAt} | {'wrongtype', type} | {'corrupt', detail} | {'forward', newId}
 *    | {'moving'}
 *
 * Nothing is written unless every check passes. 'late': Redis's clock is past `deadline` (epoch
 * ms), so the caller has already been told, or is about to be told, that the save failed; it
 * must not land now. 'link' asks the caller to add the id to the new owner's index first
 * (another key, maybe another cluster slot) and call again with linked=1, so a session is never
 * owned by a user whose index does not list it. 'moving': a renewal on a cluster holds the
 * session while it copies it (see renew.ts); the caller tries again shortly. 'legacy' hands a
 * connect-redis string to the caller, which converts it (exact JSON, in JS) and calls again with
 * that string and the full converted data: the string is replaced only if it is unchanged.
 *
 * The write is one HSET of the changed fields, the new version and expiry, and of the metadata
 * that differs from what is stored; an owner that is not there is not deleted.
 */
const SAVE = `${PRELUDE}
local key = KEYS[1]
local expected = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local has_user = ARGV[7] == '1'
local user = ARGV[8]
local linked = ARGV[9] == '1'
local legacy_raw = ARGV[10]
local deadline = tonumber(ARGV[11])

if deadline then
  local time = redis.call('TIME')
  local server_now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  if server_now > deadline then return { 'late', num(server_now) } end
end

-- pcall: a key of another type is an error table, and only then is TYPE asked.
local m = redis.pcall('HMGET', key, '@version', '@expiresAt', '@userId', '@idleTimeout', '@cookie',
  '@movingUntil')
local t, version, owner, stored_idle, stored_cookie, converting = 'none', nil, false, false, false, nil
if m.err then
  t = redis.call('TYPE', key)['ok']
elseif m[1] or m[2] or redis.call('EXISTS', key) == 1 then
  t = 'hash'
  version = tonumber(m[1])
  local expires_at = tonumber(m[2])
  if not version or not expires_at then return { 'corrupt', 'metadata field @version or @expiresAt is missing or not a number' } end
  if expires_at <= now then
    redis.call('UNLINK', key)
    t, version = 'none', nil
  else
    -- A renewal on a cluster is copying the session to its new id: wait, then follow it.
    if m[6] and tonumber(m[6]) > now then return { 'moving' } end
    owner, stored_idle, stored_cookie = m[3], m[4], m[5]
  end
end
if t == 'zset' then
  local to = forward_of(key, now)
  if to then return { 'forward', to } end
  return { 'gone' }
end
if t ~= 'hash' then
  local lkey = legacy_key(key, t)
  if lkey then
    local raw = redis.call('GET', lkey)
    if legacy_raw == '' or raw ~= legacy_raw then return legacy_reply(lkey, now) end
    -- Only the caller's own conversion, against the legacy record's version 1, replaces it.
    if expected ~= 1 then return legacy_reply(lkey, now) end
    converting, version = lkey, 1
  elseif t ~= 'none' then
    return { 'wrongtype', t }
  end
end

if expected == nil then
  if version then return hash_reply('conflict', key) end
else
  if not version then return { 'gone' } end
  if version ~= expected then return hash_reply('conflict', key) end
end
if has_user and owner ~= user and not linked then return { 'link' } end

if converting then redis.call('UNLINK', converting) end
local n_set = tonumber(ARGV[12])
local first_unset = 13 + 2 * n_set
in_chunks('HDEL', key, ARGV, first_unset, #ARGV)
local next_version = version and version + 1 or 1
local w = { '@version', num(next_version), '@expiresAt', ARGV[4] }
for i = 13, first_unset - 1 do w[#w + 1] = ARGV[i] end
if ARGV[5] ~= stored_idle then w[#w + 1] = '@idleTimeout'; w[#w + 1] = ARGV[5] end
if ARGV[6] ~= stored_cookie then w[#w + 1] = '@cookie'; w[#w + 1] = ARGV[6] end
if converting or next_version == 1 then w[#w + 1] = '@createdAt'; w[#w + 1] = ARGV[3] end
if has_user and owner ~= user then w[#w + 1] = '@userId'; w[#w + 1] = user end
in_chunks('HSET', key, w, 1, #w)
if owner and not has_user then redis.call('HDEL', key, '@userId') end
expire_at(key, tonumber(ARGV[4]))
return { 'ok', num(next_version) }
`

/**
 * touch(KEYS, expiresAt, now) -> 1 if a live session was touched, else 0, or the new id when
 * the id forwards to a renewed session (the caller touches that one). Never creates.
 */
const TOUCH = `${PRELUDE}
local key = KEYS[1]
local expires_at = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local t = redis.call('TYPE', key)['ok']
if t == 'hash' then
  local current = tonumber(redis.call('HGET', key, '@expiresAt'))
  if current and current <= now then
    redis.call('UNLINK', key)
    return 0
  end
  redis.call('HSET', key, '@expiresAt', ARGV[1])
  expire_at(key, expires_at)
  return 1
end
if t == 'zset' then return forward_of(key, now) or 0 end
local lkey = legacy_key(key, t)
if lkey then
  expire_at(lkey, expires_at)
  return 1
end
return 0
`

/**
 * destroy(KEYS, now, onlyIfOwner '0'|'1', owner)
 * -> {'destroyed', owner | ''} when a live session was removed, {'none', ''} when there was none,
 *    {'kept', owner | ''} when onlyIfOwner is set and the session belongs to someone else,
 *    {'forward', newId} when the id was renewed within its grace (the forward is removed, and
 *    the caller destroys the session under newId too).
 * The owner's index is another key (another slot on a cluster), so the caller unlinks it there.
 */
const DESTROY = `${PRELUDE}
local key = KEYS[1]
local now = tonumber(ARGV[1])
local only_if_owner = ARGV[2] == '1'
local t = redis.call('TYPE', key)['ok']
if t == 'hash' then
  local m = redis.call('HMGET', key, '@userId', '@expiresAt')
  local owner = m[1] or ''
  if only_if_owner and m[1] ~= ARGV[3] then return { 'kept', owner } end
  redis.call('UNLINK', key)
  if KEYS[2] and KEYS[2] ~= key then redis.call('UNLINK', KEYS[2]) end
  local expires_at = tonumber(m[2])
  if expires_at and expires_at <= now then return { 'none', owner } end
  return { 'destroyed', owner }
end
if t == 'zset' then
  -- An old id of a renewed session: it dies now, and the caller may follow it to the session.
  local to = forward_of(key, now)
  redis.call('UNLINK', key)
  if to then return { 'forward', to } end
  return { 'none', '' }
end
local lkey = legacy_key(key, t)
if lkey then
  if only_if_owner then return { 'kept', '' } end
  redis.call('UNLINK', lkey)
  return { 'destroyed', '' }
end
return { 'none', '' }
`

export const LOAD_SCRIPT = script(LOAD)
export const SAVE_SCRIPT = script(SAVE)
export const TOUCH_SCRIPT = script(TOUCH)
export const DESTROY_SCRIPT = script(DESTROY)
