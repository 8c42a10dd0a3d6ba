import type { SaveResult, SessionChange, SessionRecord } from '../../lib/store.js'
import { StoreError } from '../../lib/store.js'
import { changedKeys, cookieColumn, toRecord, type SessionRow } from './codec.js'
import { fromLegacy, migratedData, type LegacyRow } from './connect-pg-simple.js'
import type { Statements } from './sql.js'

/** What the save and load statements return. */
export type Row = SessionRow &
  Partial<LegacyRow> & {
    saved?: string | null
    found?: string
    open?: string
    legacy_sess?: string | null
    legacy_expires_ms?: string | null
    /** loadTouch: the owner ('' for none) of a row the touch ended, null when none ended. */
    ended_user?: string | null
    /** A load: the id a renewal within its grace moved this id's session to. */
    renewed_to?: string | null
    /** loadTouch: 't' when the row was live as the statement began (see `load`). */
    seen?: string
  }

/** Runs one of the store's statements (by name, or its text) and returns its rows. */
export type Query = (
  what: string,
  subject: string,
  statement: keyof Statements | string,
  values: unknown[],
  until?: number,
) => Promise<Row[]>

/** A save meets a concurrent create or a legacy row's change at most a few times in a row. */
const MAX_SAVE_STEPS = 4

/**
 * Writes one save: a create, or an update checked against the expected version, or the move of a
 * connect-pg-simple row (`migrate`) into the table. Steps again when a concurrent create or move
 * beat it, at most MAX_SAVE_STEPS times.
 */
export async function saveRow(
  id: string,
  change: SessionChange,
  deadline: number,
  query: Query,
  migrate: string | undefined,
): Promise<SaveResult> {
  // Every statement's last arguments: the expiry, idle timeout, cookie, owner and deadline.
  const rest = [change.expiresAt, change.idleTimeout, cookieColumn(change), change.userId, deadline]
  for (let step = 0; step < MAX_SAVE_STEPS; step++) {
    const now = Date.now()
    if (change.expectedVersion === null) {
      const [row] = await query(
        'save of session',
        id,
        'create',
        [id, now, change.createdAt, changedKeys(change.set), ...rest],
        deadline,
      )
      if (row!.saved) return { ok: true, version: Number(row!.saved) }
      if (row!.found === 't') return { ok: false, reason: 'conflict', current: toRecord(id, row!) }
      if (row!.legacy_sess)
        return { ok: false, reason: 'conflict', current: legacyRecord(id, row!, now) }
      if (row!.open !== 't') throw lateSave(id, deadline)
      continue // a create that committed after this statement began: the next one sees it
    }

    const [row] = await query(
      'save of session',
      id,
      'update',
      [id, now, change.expectedVersion, change.unset, changedKeys(change.set), ...rest],
      deadline,
    )
    if (row!.saved) return { ok: true, version: Number(row!.saved) }
    if (row!.found === 't') {
      const current = toRecord(id, row!)
      if (current.version !== change.expectedVersion)
        return { ok: false, reason: 'conflict', current }
      throw lateSave(id, deadline)
    }
    if (!row!.legacy_sess || migrate === undefined) return { ok: false, reason: 'gone' }

    const current = legacyRecord(id, row!, now)
    // A legacy session is version 1; the save that moves it writes version 2.
    if (change.expectedVersion !== 1) return { ok: false, reason: 'conflict', current }
    const [moved] = await query(
      'save of session',
      id,
      migrate,
      [
        id,
        row!.legacy_sess,
        changedKeys(migratedData(current, change)),
        current.createdAt,
        ...rest,
      ],
      deadline,
    )
    if (moved!.saved) return { ok: true, version: Number(moved!.saved) }
    if (moved!.open !== 't') throw lateSave(id, deadline)
    // The legacy row changed or was moved meanwhile: look again.
  }
  throw new StoreError(
    `PostgresStore: save of session ${id} did not settle in ${MAX_SAVE_STEPS} steps (it kept ` +
      `changing)`,
    { code: 'EBUSY' },
  )
}

/** A connect-pg-simple row read through a load or save statement, as a record. */
export function legacyRecord(id: string, row: Row, now: number): SessionRecord {
  return fromLegacy(id, { sess: row.legacy_sess!, expires_ms: row.legacy_expires_ms ?? '' }, now)
}

/** The error of a save whose deadline passed before it could be written. */
export function lateSave(id: string, deadline: number): StoreError {
  return new StoreError(
    `PostgresStore: save of session ${id} reached its deadline ` +
      `(${new Date(deadline).toISOString()}) before it could be written; it was not saved`,
    { code: 'ETIMEDOUT' },
  )
}
