/**
 * The scripts' arguments and replies: a save's arguments, replies read into records, and errors
 * that name the key.
 */
import type { CookieOverrides, SessionChange, SessionRecord } from '../../lib/store.js'
import { StoreError } from '../../lib/store.js'
import { withOwner } from '../../lib/session-data.js'
import { defineKey } from '../../lib/util.js'
import { checkKeyExpiries } from '../../lib/key-expiry.js'
import { corruptSession } from '../../lib/store-errors.js'

/** A script's reply: a tag, then its values (for a hash: field, value, field, value, ...). */
export type Reply = (string | null)[]

export function asReply(reply: unknown, key: string): Reply {
  if (!Array.isArray(reply) || typeof reply[0] !== 'string') {
    throw new StoreError(
      `RedisStore: unexpected reply from Redis for ${key}: ${JSON.stringify(reply)}`,
      { code: 'EREDIS' },
    )
  }
  return reply as Reply
}

export function unexpected(key: string, reply: Reply): StoreError {
  if (reply[0] === 'wrongtype') return corrupt(key, `it is a Redis ${reply[1]}, not a session hash`)
  if (reply[0] === 'corrupt') return corrupt(key, String(reply[1]))
  return new StoreError(
    `RedisStore: unexpected reply from Redis for ${key}: ${JSON.stringify(reply[0])}`,
    { code: 'EREDIS' },
  )
}

export function corrupt(key: string, detail: string, cause?: unknown): StoreError {
  return corruptSession('RedisStore', key, detail, cause)
}

/** A user key as a hash field: one more "@" in front of a key that starts with "@". */
export function toField(name: string): string {
  return name.charCodeAt(0) === AT ? `@${name}` : name
}

const AT = 64 // "@"

/**
 * Reads a tagged HGETALL reply (`[tag, field, value, ...]`) into a record, checking every
 * metadata field. User fields stay JSON text: the core parses them once, and names the key of
 * one that is not JSON.
 */
export function parseHash(key: string, reply: Reply): SessionRecord {
  const data: Record<string, string> = {}
  let version: string | undefined
  let createdAt: string | undefined
  let expiresAt: string | undefined
  let idleTimeout: string | undefined
  let cookie: string | undefined
  let userId: string | undefined
  let keyExpires: string | undefined
  let renewedAt: string | undefined
  for (let i = 1; i + 1 < reply.length; i += 2) {
    const field = reply[i]!
    const value = reply[i + 1]!
    if (field.charCodeAt(0) !== AT) {
      defineKey(data, field, value)
      continue
    }
    if (field.charCodeAt(1) === AT) {
      defineKey(data, field.slice(1), value)
      continue
    }
    switch (field) {
      case '@version':
        version = value
        break
      case '@createdAt':
        createdAt = value
        break
      case '@expiresAt':
        expiresAt = value
        break
      case '@idleTimeout':
        idleTimeout = value
        break
      case '@cookie':
        cookie = value
        break
      case '@userId':
        userId = value
        break
      case KEY_EXPIRES:
        keyExpires = value
        break
      case '@renewedAt':
        renewedAt = value
        break
    }
  }
  const record = withOwner(
    {
      data,
      cookie: parseCookie(key, cookie),
      createdAt: metaNumber(key, '@createdAt', createdAt, Number.isFinite, 'a time in epoch ms'),
      expiresAt: metaNumber(key, '@expiresAt', expiresAt, Number.isFinite, 'a time in epoch ms'),
      idleTimeout: metaNumber(
        key,
        '@idleTimeout',
        idleTimeout,
        (n) => Number.isFinite(n) && n >= 0,
        'a duration in ms',
      ),
      version: metaNumber(
        key,
        '@version',
        version,
        (n) => Number.isSafeInteger(n) && n >= 1,
        'a positive integer',
      ),
    },
    userId,
  )
  if (renewedAt !== undefined)
    record.renewedAt = metaNumber(
      key,
      '@renewedAt',
      renewedAt,
      Number.isFinite,
      'a time in epoch ms',
    )
  if (keyExpires !== undefined) record.keyExpires = parseKeyExpires(key, keyExpires)
  return record
}

/** The metadata field holding per-key expiries as JSON: `{"otp": epochMs, ...}`. */
export const KEY_EXPIRES = '@keyExpires'

function parseKeyExpires(key: string, raw: string): Record<string, number> {
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch (err) {
    throw corrupt(key, `metadata field ${KEY_EXPIRES} is not JSON`, err)
  }
  const problem = checkKeyExpiries(parsed)
  if (problem) throw corrupt(key, `metadata field ${KEY_EXPIRES}: ${problem}`)
  return parsed as Record<string, number>
}

function metaNumber(
  key: string,
  field: string,
  raw: string | undefined,
  check: (n: number) => boolean,
  what: string,
): number {
  const n = raw === undefined || raw.trim() === '' ? NaN : Number(raw)
  if (!check(n))
    throw corrupt(
      key,
      `metadata field ${field} should be ${what}, found ` +
        `${raw === undefined ? 'nothing' : JSON.stringify(raw)}`,
    )
  return n
}

function parseCookie(key: string, raw: string | undefined): CookieOverrides {
  if (raw === undefined) throw corrupt(key, 'metadata field @cookie is missing')
  if (raw === '{}') return {}
  let cookie: unknown
  try {
    cookie = JSON.parse(raw)
  } catch (err) {
    throw corrupt(key, 'metadata field @cookie is not JSON', err)
  }
  if (typeof cookie !== 'object' || cookie === null || Array.isArray(cookie)) {
    throw corrupt(
      key,
      `metadata field @cookie should be a JSON object, found ${JSON.stringify(raw)}`,
    )
  }
  return cookie as CookieOverrides
}

/**
 * The save script's arguments (see scripts.ts): the change's metadata, then the set keys as
 * field, value pairs, then the unset keys as fields.
 *
 * @example
 * ```ts
 * const args = saveArgs(change, change.set, change.unset, false, '', String(deadline))
 * ```
 */
export function saveArgs(
  change: SessionChange,
  set: Record<string, string>,
  unset: string[],
  linked: boolean,
  legacyRaw: string,
  applyBy: string,
): string[] {
  const names = Object.keys(set)
  const args: string[] = [
    change.expectedVersion === null ? '' : String(change.expectedVersion),
    String(Date.now()),
    String(change.createdAt),
    String(change.expiresAt),
    String(change.idleTimeout),
    JSON.stringify(change.cookie),
    change.userId === null ? '0' : '1',
    change.userId ?? '',
    linked ? '1' : '0',
    legacyRaw,
    applyBy,
    String(names.length),
  ]
  // The per-key expiries travel as one more metadata field to write, or to delete when the
  // change clears them (absent: the expected version had none, so there is nothing to delete).
  const expires = change.keyExpires
  const hasExpires = expires !== undefined && Object.keys(expires).length > 0
  args[args.length - 1] = String(names.length + (hasExpires ? 1 : 0))
  for (const name of names) args.push(toField(name), set[name]!)
  if (hasExpires) args.push(KEY_EXPIRES, JSON.stringify(expires))
  for (const name of unset) args.push(toField(name))
  if (expires !== undefined && !hasExpires) args.push(KEY_EXPIRES)
  return args
}
