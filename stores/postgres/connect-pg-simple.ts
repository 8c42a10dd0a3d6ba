/**
 * Sessions connect-pg-simple wrote (`sid`, `sess json`, `expire`), read through the same codec
 * the drop-in uses for express-session's stored format (lib/formats/express-session.ts), so there
 * is one
 * reader of that format. Such a session counts as version 1; its first save moves it into the
 * concord table as version 2, in one statement that checks the `sess` text is unchanged.
 */
import type { SessionChange, SessionRecord } from '../../lib/store.js'
import { fromBlob } from '../../lib/formats/express-session.js'
import { applyChange } from '../../lib/session-data.js'
import { corrupt } from './codec.js'

/** A connect-pg-simple row as the store's statements return it. */
export interface LegacyRow {
  sess: string
  expires_ms: string
}

/** The record in a connect-pg-simple row. */
export function fromLegacy(id: string, row: LegacyRow, now: number): SessionRecord {
  let blob: unknown
  try {
    blob = JSON.parse(row.sess)
  } catch (err) {
    throw corrupt(id, 'the connect-pg-simple session (column sess) is not JSON', err)
  }
  let record: SessionRecord
  try {
    record = fromBlob(id, blob, now)
  } catch (err) {
    throw corrupt(id, 'the connect-pg-simple session is not a session object', err)
  }
  const expire = Number(row.expires_ms)
  // connect-pg-simple's expire column is what it honours; the cookie inside may say otherwise.
  return { ...record, version: 1, expiresAt: Number.isFinite(expire) ? expire : record.expiresAt }
}

/** The whole session as it will be in the concord table: the legacy data with `change` on top. */
export function migratedData(
  current: SessionRecord,
  change: SessionChange,
): Record<string, string> {
  return applyChange(current.data, change)
}
