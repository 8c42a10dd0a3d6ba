/**
 * Rows to records and changes to parameters, for the PostgreSQL store.
 *
 * `data` is a jsonb object with one member per session key whose value is that key's JSON text,
 * exactly as the app serialized it: `{"cart": "{\"items\":[\"tea\"]}"}`. jsonb would reorder an
 * object's keys and cannot hold "\u0000", so storing the values themselves would change what
 * the app gets back; holding the text keeps it byte for byte, while `data - removed || changed`
 * still updates single keys, and psql still reads it (`data->>'cart'`, or
 * `(data->>'cart')::jsonb` for the value).
 *
 * Statements run with a type parser that returns PostgreSQL's text for every column, so a
 * parser the app installed globally (pg.types.setTypeParser) cannot change what is read here.
 */
import type { CookieOverrides, SessionChange, SessionRecord } from '../../lib/store.js'
import { StoreError } from '../../lib/store.js'
import { corruptSession } from '../../lib/store-errors.js'
import { withOwner } from '../../lib/session-data.js'
import { isPlainObject } from '../../lib/util.js'
import { checkKeyExpiries } from '../../lib/key-expiry.js'

/** What a statement returns for a session, every column as PostgreSQL's text. */
export interface SessionRow {
  data: string | null
  cookie: string | null
  version: string | null
  created_ms: string | null
  expires_ms: string | null
  idle_timeout: string | null
  user_id: string | null
  /** Absent from statements that do not select it; null for an id never renewed. */
  renewed_ms?: string | null
}

/** Every column as text: the per-query type parser of the store's statements. */
export const TEXT_TYPES = { getTypeParser: () => (value: string) => value }

/** A StoreError naming the session whose row cannot be read. */
export function corrupt(id: string, detail: string, cause?: unknown): StoreError {
  return corruptSession('PostgresStore', id, detail, cause)
}

/** The record in a row, every column checked. */
export function toRecord(id: string, row: SessionRow): SessionRecord {
  const record = withOwner(
    {
      data: parseData(id, row.data),
      cookie: parseCookie(id, row.cookie),
      createdAt: number(id, row.created_ms, 'created_at', Number.isFinite, 'a time'),
      expiresAt: number(id, row.expires_ms, 'expires_at', Number.isFinite, 'a time'),
      idleTimeout: number(
        id,
        row.idle_timeout,
        'idle_timeout',
        (n) => Number.isFinite(n) && n >= 0,
        'a duration in ms',
      ),
      version: number(
        id,
        row.version,
        'version',
        (n) => Number.isSafeInteger(n) && n >= 1,
        'a positive integer',
      ),
    },
    row.user_id,
  )
  if (row.renewed_ms !== undefined && row.renewed_ms !== null)
    record.renewedAt = number(id, row.renewed_ms, 'renewed_at', Number.isFinite, 'a time')
  const keyExpires = parseKeyExpires(id, record.cookie)
  if (keyExpires !== undefined) record.keyExpires = keyExpires
  return record
}

/**
 * The member of the cookie column that holds per-key expiries (`{"otp": epochMs}`). Cookie
 * settings never start with "@", so it cannot meet one, and the table needs no new column.
 */
export const KEY_EXPIRES = '@keyExpires'

/** The cookie column's value: the cookie overrides, and the per-key expiries when any. */
export function cookieColumn(change: SessionChange): string {
  const expires = change.keyExpires
  if (expires === undefined || Object.keys(expires).length === 0)
    return JSON.stringify(change.cookie)
  return JSON.stringify({ ...change.cookie, [KEY_EXPIRES]: expires })
}

/** Takes the per-key expiries out of the parsed cookie column. */
function parseKeyExpires(id: string, cookie: CookieOverrides): Record<string, number> | undefined {
  const holder = cookie as Record<string, unknown>
  if (!Object.hasOwn(holder, KEY_EXPIRES)) return undefined
  const expires = holder[KEY_EXPIRES]
  delete holder[KEY_EXPIRES]
  const problem = checkKeyExpiries(expires)
  if (problem) throw corrupt(id, `cookie->'${KEY_EXPIRES}': ${problem}`)
  return expires as Record<string, number>
}

function parseData(id: string, text: string | null): Record<string, string> {
  let parsed: unknown
  try {
    parsed = JSON.parse(text ?? '')
  } catch (err) {
    throw corrupt(id, 'column data is not JSON', err)
  }
  if (!isPlainObject(parsed))
    throw corrupt(id, `column data should be a JSON object, found ${describe(parsed)}`)
  // A null prototype keeps a key such as "__proto__" an ordinary key while filling it.
  const data: Record<string, string> = Object.create(null)
  for (const key of Object.keys(parsed)) {
    const value = parsed[key]
    if (typeof value !== 'string') {
      throw corrupt(
        id,
        `data->${JSON.stringify(key)} should be the key's JSON text as a string, found ` +
          `${describe(value)}`,
      )
    }
    try {
      JSON.parse(value)
    } catch (err) {
      throw corrupt(id, `data->>${JSON.stringify(key)} is not JSON text`, err)
    }
    data[key] = value
  }
  return { ...data }
}

function parseCookie(id: string, text: string | null): CookieOverrides {
  let parsed: unknown
  try {
    parsed = JSON.parse(text ?? '')
  } catch (err) {
    throw corrupt(id, 'column cookie is not JSON', err)
  }
  if (!isPlainObject(parsed))
    throw corrupt(id, `column cookie should be a JSON object, found ${describe(parsed)}`)
  return parsed as CookieOverrides
}

function number(
  id: string,
  raw: string | null,
  column: string,
  check: (n: number) => boolean,
  what: string,
): number {
  const n = raw === null || raw.trim() === '' ? NaN : Number(raw)
  if (!check(n))
    throw corrupt(
      id,
      `column ${column} should be ${what}, found ${raw === null ? 'NULL' : JSON.stringify(raw)}`,
    )
  return n
}

/** The jsonb object of changed keys, `{ key: jsonText }`, for `data || $changed`. */
export function changedKeys(set: Record<string, string>): string {
  return JSON.stringify(set)
}

/**
 * The save's deadline: the caller's, or `fallback` (the store's own timeout) if that comes first.
 */
export function effectiveDeadline(change: SessionChange, fallback: number): number {
  return change.deadline === undefined ? fallback : Math.min(change.deadline, fallback)
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}
