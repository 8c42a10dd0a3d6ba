/**
 * Per-key lifetimes as stores keep them: a map from a top-level key to the epoch ms it expires
 * at. Pure, with no import, so a store may use it as it uses `touchedExpiry`.
 */
import type { SessionRecord } from './store.js'

/** Per-key expiries, epoch ms by key name. */
export type KeyExpiries = Record<string, number>

/**
 * The keys whose own lifetime has ended at `now` (an expiry at or before `now`).
 *
 * @example
 * ```ts
 * expiredKeys({ otp: 1_000, flash: 5_000 }, 2_000) // ['otp']
 * ```
 */
export function expiredKeys(expires: KeyExpiries | undefined, now: number): string[] {
  const gone: string[] = []
  if (expires === undefined) return gone
  for (const key of Object.keys(expires)) if (expires[key]! <= now) gone.push(key)
  return gone
}

/**
 * `record` without the keys whose own lifetime has ended at `now`, and without their entries
 * in `keyExpires`. Returns `record` itself when nothing expired, so the common load copies
 * nothing.
 *
 * @example
 * ```ts
 * const record = await readRecord(id)
 * return withoutExpiredKeys(record, Date.now())
 * ```
 */
export function withoutExpiredKeys(record: SessionRecord, now: number): SessionRecord {
  const gone = expiredKeys(record.keyExpires, now)
  if (gone.length === 0) return record
  const data = { ...record.data }
  const keyExpires = { ...record.keyExpires }
  for (const key of gone) {
    delete data[key]
    delete keyExpires[key]
  }
  const rest: SessionRecord = { ...record, data }
  if (Object.keys(keyExpires).length > 0) rest.keyExpires = keyExpires
  else delete rest.keyExpires
  return rest
}

/**
 * Checks a stored expiry map: an object of finite numbers. Returns a description of what is
 * wrong, or undefined when it is well formed, so a store can name the session in its error.
 *
 * @example
 * ```ts
 * const problem = checkKeyExpiries(parsed)
 * if (problem) throw new StoreError(`session ${id}: ${problem}`)
 * ```
 */
export function checkKeyExpiries(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return 'key expiries should be an object of epoch ms by key'
  for (const [key, at] of Object.entries(value as Record<string, unknown>))
    if (typeof at !== 'number' || !Number.isFinite(at))
      return `the expiry of key "${key}" should be epoch ms, found ${JSON.stringify(at)}`
  return undefined
}
