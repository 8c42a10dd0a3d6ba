/**
 * Sessions that express-session + connect-redis wrote: a JSON string at `legacyPrefix + id`.
 * RedisStore reads them as they are (so a user switching from connect-redis stays signed in)
 * and turns each into a hash on its first save. Only this file knows their format, through the
 * drop-in's codec for express-session's stored form (lib/formats/express-session.ts).
 */
import type { SessionChange, SessionRecord } from '../../lib/store.js'
import { fromBlob } from '../../lib/formats/express-session.js'
import { applyChange } from '../../lib/session-data.js'
import { ONE_DAY_MS } from '../../lib/time.js'
import { corrupt, type Reply } from './records.js'

/** connect-redis's default ttl (1 day): the idle period of a legacy session without a maxAge. */
export const CONNECT_REDIS_IDLE = ONE_DAY_MS
/** The load script's argument for it. */
export const CONNECT_REDIS_IDLE_ARG = String(CONNECT_REDIS_IDLE)

/**
 * How RedisStore reaches connect-redis sessions, in one place: the keys its scripts take and the
 * string scans `count` and `clear` add. Reading them is off without `legacyPrefix`.
 *
 * @example
 * ```ts
 * const legacy = connectRedisReading('sess:', 'sess:')
 * legacy.keys('abc') // ['sess:abc']
 * ```
 */
export interface ConnectRedisReading {
  /** Where connect-redis keeps its sessions; undefined when reading them is off. */
  readonly legacyPrefix: string | undefined
  /** The keys a script takes after the session's own (see {@link legacyKeys}). */
  keys(id: string): readonly string[]
  /**
   * The prefixes whose string keys a scan adds to its own: `withIndexes` scans already take
   * every type under the store's prefix, so they add only a different legacy prefix.
   */
  stringScans(withIndexes: boolean): string[]
}

/**
 * The {@link ConnectRedisReading} of a store with this `prefix` and `legacyPrefix`.
 *
 * @example
 * ```ts
 * const legacy = connectRedisReading('sess:', undefined) // reads none
 * ```
 */
export function connectRedisReading(
  prefix: string,
  legacyPrefix: string | undefined,
): ConnectRedisReading {
  return {
    legacyPrefix,
    keys: (id) => legacyKeys(legacyPrefix, id),
    stringScans: (withIndexes) =>
      legacyPrefix === undefined || (withIndexes && legacyPrefix === prefix) ? [] : [legacyPrefix],
  }
}

/**
 * The keys a script takes after the session's own: the connect-redis key of the same id while
 * reading those is on (`legacyPrefix`), else none.
 *
 * @example
 * ```ts
 * legacyKeys('sess:', 'abc') // ['sess:abc']
 * ```
 */
export function legacyKeys(legacyPrefix: string | undefined, id: string): readonly string[] {
  return legacyPrefix === undefined ? NO_KEYS : [legacyPrefix + id]
}

/** No legacy keys: shared, never changed. */
const NO_KEYS: readonly string[] = []

/**
 * A load script's `{'legacy', raw, expiresAt}` reply as a record.
 *
 * @example
 * ```ts
 * const record = loadLegacy('sess:abc', reply, Date.now())
 * ```
 */
export function loadLegacy(key: string, reply: Reply, now: number): SessionRecord {
  return parseLegacy(key, reply[1]!, Number(reply[2]), now)
}

/**
 * What a save does on a `{'legacy', raw, expiresAt}` reply: a conflict with the connect-redis
 * session unless the save expected its version 1, else the arguments of the converting retry
 * (the string it replaces, and the whole session with the change on top).
 *
 * @example
 * ```ts
 * const conversion = convertOnSave(key, reply, change)
 * ```
 */
export function convertOnSave(
  key: string,
  reply: Reply,
  change: SessionChange,
):
  { current: SessionRecord } | { legacyRaw: string; set: Record<string, string>; unset: string[] } {
  const current = parseLegacy(key, reply[1]!, Number(reply[2]), Date.now())
  // A legacy session is version 1; its first save writes version 2.
  if (change.expectedVersion !== 1) return { current }
  return { legacyRaw: reply[1]!, set: convertedKeys(current, change), unset: [] }
}

/**
 * A session express-session + connect-redis wrote: `{ cookie: {...}, ...data }` as JSON. One the
 * drop-in's adapter wrote keeps its owner, creation time and cookie settings from its
 * `__concord` field; one only express-session wrote counts as created now, with its cookie's
 * maxAge as its idle period. Either way the string is version 1: the save that converts it
 * checks the string itself, not a version inside it.
 *
 * @example
 * ```ts
 * const record = parseLegacy('sess:abc', '{"cookie":{"originalMaxAge":60000},"n":1}', Date.now() + 60_000, Date.now())
 * ```
 */
export function parseLegacy(
  key: string,
  raw: string,
  expiresAt: number,
  now: number,
): SessionRecord {
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

/**
 * The keys a converting save writes: the whole legacy session with this save's change on top,
 * since the hash replaces the string.
 *
 * @example
 * ```ts
 * const set = convertedKeys(parseLegacy(key, raw, at, now), change)
 * ```
 */
export function convertedKeys(
  current: SessionRecord,
  change: Pick<SessionChange, 'set' | 'unset'>,
): Record<string, string> {
  return applyChange(current.data, change)
}
