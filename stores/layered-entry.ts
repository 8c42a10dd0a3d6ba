/**
 * What the layered store keeps in its hot layer, and how it writes there without ever moving
 * an entry backwards.
 *
 * A hot entry is an ordinary session record in the hot store. Its data holds the session's keys
 * plus one reserved key, {@link META_KEY}, with the cold store's version, the owner, and until
 * when it may be served without asking cold. The entry's own expiry and idle timeout are the
 * session's, so the hot store's load-with-touch moves the idle expiry in the one call a read
 * makes, and the meta is not rewritten per read. Versions in the hot store's own numbering only
 * serve its compare-and-set.
 *
 * Two special entries carry no data:
 * - a **marker** says "cold holds version v or newer": a save reached cold but its data could
 *   not be applied here, so the next read refills from cold;
 * - a **tombstone** says "destroyed": reads answer null, and no refill can bring the session back
 *   while it lives (hotTtl).
 */
import type { SessionChange, SessionRecord, Store } from '../lib/store.js'
import { withOwner } from '../lib/session-data.js'
import { defineKey } from '../lib/util.js'

/** The reserved data key of a hot entry. A session key of this name is refused at save. */
export const META_KEY = '\u0000concord-layer'

export interface Meta {
  /** The cold store's version this entry holds (or, for a marker, at least exists). */
  v: number
  /** The idle expiry the cold store is known to hold; reads touch cold when hot runs ahead. */
  k: number
  /** The session's creation time (the hot store may keep its own from an earlier entry). */
  c: number
  /** Epoch ms until which reads may be served from this entry; after it they ask cold. */
  h?: number
  /** The absolute end a capped touch found, for loads that pass no absoluteTimeout. */
  a?: number
  u?: string
  marker?: true
  dead?: true
}

export interface HotEntry {
  meta: Meta
  /** The hot store's own record, for its compare-and-set and TTL. */
  raw: SessionRecord
}

/**
 * Reads a hot record; anything without valid meta counts as absent. `known`, what this process
 * last saw of the entry, spares parsing meta that has not changed since (parsed metas are never
 * mutated).
 */
export function readEntry(raw: SessionRecord | null, known?: HotVersion): HotEntry | null {
  const text = raw?.data[META_KEY]
  if (raw === null || text === undefined) return null
  if (known?.read !== undefined && known.read.text === text) return { meta: known.read.meta, raw }
  let meta: Meta
  try {
    meta = JSON.parse(text) as Meta
  } catch {
    return null
  }
  if (typeof meta?.v !== 'number' || typeof meta.k !== 'number' || typeof meta.c !== 'number')
    return null
  return { meta, raw }
}

/** The session in a live hot entry, as the cold store would return it. */
export function toSession(entry: HotEntry): SessionRecord {
  const { raw, meta } = entry
  // One copy without the reserved key. A plain loop: object rest with a computed exclusion takes
  // V8's slow path. defineKey keeps a "__proto__" key an own key, as the hot store's was.
  const source = raw.data
  const data: Record<string, string> = {}
  for (const key in source) if (key !== META_KEY) defineKey(data, key, source[key])
  const record: SessionRecord = {
    data,
    cookie: raw.cookie,
    createdAt: meta.c,
    expiresAt: meta.a === undefined ? raw.expiresAt : Math.min(raw.expiresAt, meta.a),
    idleTimeout: raw.idleTimeout,
    version: meta.v,
  }
  if (meta.u !== undefined) record.userId = meta.u
  if (raw.keyExpires !== undefined) record.keyExpires = raw.keyExpires
  return record
}

/**
 * What to make the hot entry: a whole session, a change onto its previous version, a marker or a
 * tombstone.
 */
export type HotWrite =
  | { kind: 'session'; record: SessionRecord }
  | { kind: 'change'; change: SessionChange; version: number }
  | { kind: 'marker'; version: number }
  | { kind: 'dead' }

/** A live hot entry as a load saw it: its version in the hot store's numbering, and cold's. */
export interface HotVersion {
  hot: number
  cold: number
  /** The entry's meta as read, text and parsed: a read that finds the same text skips parsing. */
  read?: { text: string; meta: Meta }
}

const DEAD_VERSION = Number.MAX_SAFE_INTEGER

function versionOf(write: HotWrite): number {
  switch (write.kind) {
    case 'session':
      return write.record.version
    case 'dead':
      return DEAD_VERSION
    default:
      return write.version
  }
}

function isLive(entry: HotEntry | null): entry is HotEntry {
  return entry !== null && !entry.meta.marker && !entry.meta.dead
}

/**
 * Whether a hot entry holds exactly `record`'s session: its version, and the same creation and
 * owner, so a session created again under the id (its versions counting from 1 again) never
 * passes for the one hot still holds.
 */
function sameSession(meta: Meta, record: SessionRecord): boolean {
  return meta.v === record.version && meta.c === record.createdAt && meta.u === record.userId
}

/** Whether `existing` makes `write` needless: it is as new, or a tombstone. */
function supersedes(existing: HotEntry, write: HotWrite, version: number, now: number): boolean {
  const { meta } = existing
  if (meta.dead) return true
  if (write.kind !== 'session') return meta.v >= version
  // A refill replaces a marker of its version, and an entry of its version past its `h`, so a
  // session read from hot keeps being checked against cold every hotTtl.
  if (meta.v !== version) return meta.v > version
  return !meta.marker && (meta.h ?? 0) > now
}

/**
 * Writes `write` into the hot store unless the entry there is as new or newer (or a tombstone),
 * by compare-and-set on the hot store's own versions: a refill that read cold before a save
 * (or a destroy) can never overwrite what the save put here.
 *
 * `seen`, the versions of the entry a load of this process saw, lets a change go straight onto
 * it in one call, and `current`, the entry a load just read, lets a refill replace it in one:
 * if the entry has moved since, the compare-and-set fails and the write starts over from what
 * the hot store answers. Resolves to the live entry written, if any.
 *
 * @example
 * ```ts
 * await putHot(hot, id, { kind: 'dead' }, 5 * 60_000)
 * ```
 */
export async function putHot(
  hot: Store,
  id: string,
  write: HotWrite,
  hotTtl: number,
  now = Date.now(),
  seen?: HotVersion,
  current: SessionRecord | null = null,
): Promise<HotVersion | undefined> {
  const version = versionOf(write)
  for (let attempt = 0; attempt < 6; attempt++) {
    let planned: { change: SessionChange; live: boolean }
    if (attempt === 0 && write.kind === 'change' && seen?.cold === write.version - 1) {
      planned = {
        change: changeOnto(write, seen.hot, write.change.createdAt, hotTtl, now),
        live: true,
      }
    } else {
      const existing = readEntry(current)
      if (current !== null && existing && supersedes(existing, write, version, now)) return
      planned = buildChange(write, current, existing, hotTtl, now)
    }
    const result = await hot.save(id, planned.change)
    if (result.ok) return planned.live ? { hot: result.version, cold: version } : undefined
    current = result.reason === 'conflict' ? result.current : null
  }
  // Six writers in a row beat this one: each of them wrote something at least as new, or
  // marked the entry, so leaving it is safe.
  return undefined
}

/**
 * The hot save for `write` over `current` (null: create). A change applies only onto exactly
 * the version before it; otherwise the entry becomes a marker of the new version.
 */
function buildChange(
  write: HotWrite,
  current: SessionRecord | null,
  existing: HotEntry | null,
  hotTtl: number,
  now: number,
): { change: SessionChange; live: boolean } {
  const base = {
    unset: current === null ? [] : Object.keys(current.data).filter((k) => k !== META_KEY),
    expectedVersion: current === null ? null : current.version,
    userId: null,
  }
  // Markers and tombstones touched by a read live on hotTtl past it, never less.
  const empty = (meta: Meta): { change: SessionChange; live: boolean } => ({
    change: {
      ...base,
      set: { [META_KEY]: JSON.stringify(meta) },
      cookie: {},
      createdAt: now,
      expiresAt: now + hotTtl,
      idleTimeout: hotTtl,
      keyExpires: {},
    },
    live: false,
  })
  switch (write.kind) {
    case 'dead':
      return empty({ v: DEAD_VERSION, k: now + hotTtl, c: now, dead: true })
    case 'marker':
      return empty({ v: write.version, k: now + hotTtl, c: now, marker: true })
    case 'session': {
      const { record } = write
      if (current !== null && isLive(existing) && sameSession(existing.meta, record)) {
        // The check against cold every hotTtl found hot current: extend it, data untouched.
        const meta = { ...existing.meta, k: record.expiresAt, h: now + hotTtl }
        return { change: metaChange(current, meta, record.expiresAt), live: true }
      }
      const meta: Meta = {
        v: record.version,
        k: record.expiresAt,
        c: record.createdAt,
        h: now + hotTtl,
      }
      if (record.userId !== undefined) meta.u = record.userId
      const set: Record<string, string> = Object.create(null)
      for (const key of Object.keys(record.data)) set[key] = record.data[key]!
      set[META_KEY] = JSON.stringify(meta)
      const change: SessionChange = {
        ...base,
        unset: base.unset.filter((k) => !(k in set)),
        set: { ...set },
        cookie: record.cookie,
        createdAt: record.createdAt,
        // The session's own expiry and idle timeout: the hot store's touch then keeps it exact.
        expiresAt: record.expiresAt,
        idleTimeout: record.idleTimeout,
        // Always sent: the entry it replaces may hold lifetimes this record no longer has.
        keyExpires: record.keyExpires ?? {},
      }
      return { change, live: true }
    }
    case 'change': {
      // Only onto the live entry of the version just before; anything else gets a marker.
      if (
        current === null ||
        !existing ||
        existing.meta.marker ||
        existing.meta.v !== write.version - 1
      ) {
        return empty({ v: write.version, k: write.change.expiresAt, c: now, marker: true })
      }
      return {
        change: changeOnto(write, current.version, existing.meta.c, hotTtl, now),
        live: true,
      }
    }
  }
}

/** A change applied onto the hot entry at `hotVersion`, which holds the version before it. */
function changeOnto(
  write: { change: SessionChange; version: number },
  hotVersion: number,
  createdAt: number,
  hotTtl: number,
  now: number,
): SessionChange {
  const { change, version } = write
  const meta: Meta = { v: version, k: change.expiresAt, c: createdAt, h: now + hotTtl }
  if (change.userId !== null) meta.u = change.userId
  return {
    set: { ...change.set, [META_KEY]: JSON.stringify(meta) },
    unset: change.unset,
    cookie: change.cookie,
    createdAt,
    expiresAt: change.expiresAt,
    idleTimeout: change.idleTimeout,
    userId: null,
    expectedVersion: hotVersion,
    ...(change.keyExpires && { keyExpires: change.keyExpires }),
  }
}

/**
 * A hot save that changes only an entry's meta (and, for a touch, its expiry), against the
 * version it was read at.
 *
 * @example
 * ```ts
 * await hot.save(id, metaChange(entry.raw, { ...entry.meta, k: expiresAt }, expiresAt))
 * ```
 */
export function metaChange(
  raw: SessionRecord,
  meta: Meta,
  expiresAt = raw.expiresAt,
): SessionChange {
  return {
    set: { [META_KEY]: JSON.stringify(meta) },
    unset: [],
    cookie: raw.cookie,
    createdAt: raw.createdAt,
    expiresAt,
    idleTimeout: raw.idleTimeout,
    userId: null,
    expectedVersion: raw.version,
    // The hot store replaces its per-key expiries with each save's: keep them.
    ...(raw.keyExpires && { keyExpires: raw.keyExpires }),
  }
}

/**
 * The whole session a create wrote.
 *
 * @example
 * ```ts
 * await putHot(hot, id, { kind: 'session', record: recordOf(change, result.version) }, hotTtl)
 * ```
 */
export function recordOf(change: SessionChange, version: number): SessionRecord {
  const record = withOwner(
    {
      data: { ...change.set },
      cookie: change.cookie,
      createdAt: change.createdAt,
      expiresAt: change.expiresAt,
      idleTimeout: change.idleTimeout,
      version,
    },
    change.userId,
  )
  if (change.keyExpires !== undefined) record.keyExpires = change.keyExpires
  return record
}
