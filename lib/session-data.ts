/**
 * Session data as stores hold it: top-level keys, each the JSON text of its value. Shared by
 * the stores and the express-session store adapter; imports nothing.
 */
import type { SessionChange, SessionRecord } from './store.js'
import { defineKey } from './util.js'

/**
 * The data after a save: `previous` with `change.unset` removed and `change.set` written. A new
 * object, so the stored one is never changed in place, and a delete never turns it into a slow
 * dictionary-mode object. Kept keys keep their place; new (or unset and set) keys come last.
 *
 * @example
 * ```ts
 * applyChange({ a: '1', b: '2' }, { set: { b: '3', c: '4' }, unset: ['a'] })
 * // { b: '3', c: '4' }
 * ```
 */
export function applyChange(
  previous: Readonly<Record<string, string>> | undefined,
  change: Pick<SessionChange, 'set' | 'unset'>,
): Record<string, string> {
  const data: Record<string, string> = {}
  const { set } = change
  // Most saves delete nothing: no Set then.
  const unset = change.unset.length === 0 ? undefined : new Set(change.unset)
  if (previous) {
    for (const key in previous) {
      if (!Object.hasOwn(previous, key) || unset?.has(key)) continue
      defineKey(data, key, Object.hasOwn(set, key) ? set[key]! : previous[key]!)
    }
  }
  for (const key in set) {
    if (!Object.hasOwn(set, key)) continue
    if (!previous || !Object.hasOwn(previous, key) || unset?.has(key))
      defineKey(data, key, set[key]!)
  }
  return data
}

/**
 * A SessionRecord with `userId` set only when the session has an owner, so a record without
 * one has no `userId` key at all (as the contract's optional field says).
 *
 * @example
 * ```ts
 * withOwner({ data, cookie, createdAt, expiresAt, idleTimeout, version }, row.user_id)
 * ```
 */
export function withOwner(
  fields: Omit<SessionRecord, 'userId'>,
  userId: string | null | undefined,
): SessionRecord {
  const record: SessionRecord = fields
  if (userId !== undefined && userId !== null) record.userId = userId
  return record
}
