/**
 * A LayeredStore read served from hot: the session in a live hot entry, capped at its absolute
 * timeout, with cold told of the idle expiry once hot has run far enough ahead of it.
 */
import createDebug from 'debug'
import type { LoadOptions, SessionRecord, Store } from '../lib/store.js'
import {
  META_KEY,
  metaChange,
  toSession,
  type HotEntry,
  type HotVersion,
  type Meta,
} from './layered-entry.js'
import type { SeenVersions } from './layered-seen.js'

const debug = createDebug('concord-session:layered')

/** What a read served from hot reaches: both layers, and the store's own reactions. */
export interface HotReader {
  hot: Store
  cold: Store
  hotTtl: number
  seen: SeenVersions
  /** Skips hot for a while after it failed. */
  failed(what: string, err: unknown): void
  /** Ends a session found past its absolute timeout, as cold would, and answers null. */
  ended(id: string, userId: string | undefined): Promise<null>
}

/**
 * A live hot entry as the session. The hot store's load already moved its idle expiry; this
 * caps it at the absolute timeout, and tells cold when hot has run far enough ahead of it.
 * Neither write is awaited, and a normal read makes neither (nor a promise of its own).
 *
 * @example
 * ```ts
 * const entry = readEntry(await hot.load(id, { touchAt: Date.now() }))
 * if (entry && !entry.meta.marker && !entry.meta.dead)
 *   return served(reader, id, entry, options, Date.now(), seen.get(id))
 * ```
 */
export function served(
  reader: HotReader,
  id: string,
  entry: HotEntry,
  options: LoadOptions,
  now: number,
  known: HotVersion | undefined,
): SessionRecord | null | Promise<SessionRecord | null> {
  const record = toSession(entry)
  const { touchAt, absoluteTimeout } = options
  let meta: Meta | undefined
  if (touchAt !== undefined && absoluteTimeout !== undefined) {
    const end = entry.meta.c + absoluteTimeout
    if (end <= now) return reader.ended(id, record.userId)
    if (end < record.expiresAt) {
      // Kept in hot once, so a load without the option still sees the capped expiry.
      record.expiresAt = end
      if (entry.meta.a !== end) meta = { ...entry.meta, a: end }
    }
  }
  if (record.expiresAt <= now) return null
  const ahead = record.expiresAt - entry.meta.k
  if (touchAt !== undefined && ahead > 0 && ahead >= coldLag(record, reader.hotTtl)) {
    meta = { ...(meta ?? entry.meta), k: record.expiresAt }
    reader.cold
      .touch(id, record.expiresAt)
      .catch((err: unknown) => debug('touch of %s in cold failed: %O', id, err))
  }
  if (meta === undefined) {
    // Most reads find the entry this process already remembers: no write, no allocation.
    const hot = entry.raw.version
    const cold = entry.meta.v
    if (known === undefined || known.hot !== hot || known.cold !== cold || known.read === undefined)
      reader.seen.remember(id, {
        hot,
        cold,
        read: { text: entry.raw.data[META_KEY]!, meta: entry.meta },
      })
  } else {
    // One hot connection keeps the order, so the next read sees it; a save that beats it
    // carries its own expiry.
    const v = meta.v
    reader.hot.save(id, metaChange(entry.raw, meta)).then(
      (result) => result.ok && reader.seen.remember(id, { hot: result.version, cold: v }),
      (err: unknown) => reader.failed('touch', err),
    )
  }
  return record
}

/**
 * How far hot's idle expiry may run ahead of cold's before cold is told: a read from hot writes
 * cold at most once per this, and cold's copy still outlives the last read by half the idle
 * timeout, so it never ends while the session is in use.
 */
function coldLag(record: SessionRecord, hotTtl: number): number {
  return Math.min(hotTtl, record.idleTimeout / 2)
}
