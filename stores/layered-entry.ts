/**
 * What the layered store keeps in its hot layer, and how it writes there without ever moving
 * an entry backwards.
 *
 * A hot entry is an ordinary session record in the hot store. Its data holds the session's keys
 * plus one reserved key, {@link META_KEY}, with the cold store's version, the idle expiry and
 * the owner. Its own expiry (the hot store's TTL) is at most `hotTtl` after it was filled.
 * Versions in the hot store's own numbering only serve its compare-and-set.
 *
 * Two special entries carry no data:
 * - a **marker** says "cold holds version v or newer": a save reached cold but its data could
 *   not be applied here, so the next read refills from cold;
 * - a **tombstone** says "destroyed": reads answer null, and no refill can bring the session back
 *   while it lives (hotTtl).
 */
import type { SessionChange, SessionRecord, Store } from '../lib/store.js'
import { withOwner } from '../lib/session-data.js'

/** The reserved data key of a hot entry. A session key of this name is refused at save. */
export const META_KEY = '\u0000concord-layer'

export interface Meta {
  /** The cold store's version this entry holds (or, for a marker, at least exists). */
  v: number
  /** The session's idle expiry, epoch ms. */
  e: number
  /** The idle expiry the cold store is known to hold; reads touch cold when `e` runs ahead. */
  k: number
  /** The session's creation time (the hot store may keep its own from an earlier entry). */
  c: number
  u?: string
  marker?: true
  dead?: true
}

export interface HotEntry {
  meta: Meta
  /** The hot store's own record, for its compare-and-set and TTL. */
  raw: SessionRecord
}

/** Reads a hot record; anything without valid meta counts as absent. */
export function readEntry(raw: SessionRecord | null): HotEntry | null {
  const text = raw?.data[META_KEY]
  if (raw === null || text === undefined) return null
  let meta: Meta
  try {
    meta = JSON.parse(text) as Meta
  } catch {
    return null
  }
  if (
    typeof meta?.v !== 'number' ||
    typeof meta.e !== 'number' ||
    typeof meta.k !== 'number' ||
    typeof meta.c !== 'number'
  )
    return null
  return { meta, raw }
}

/** The session in a live hot entry, as the cold store would return it. */
export function toSession(entry: HotEntry): SessionRecord {
  const data: Record<string, string> = Object.create(null)
  for (const key of Object.keys(entry.raw.data))
    if (key !== META_KEY) data[key] = entry.raw.data[key]!
  const record = withOwner(
    {
      data: { ...data },
      cookie: entry.raw.cookie,
      createdAt: entry.meta.c,
      expiresAt: entry.meta.e,
      idleTimeout: entry.raw.idleTimeout,
      version: entry.meta.v,
    },
    entry.meta.u,
  )
  if (entry.raw.keyExpires !== undefined) record.keyExpires = entry.raw.keyExpires
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

/**
 * Writes `write` into the hot store unless the entry there is as new or newer (or a tombstone),
 * by compare-and-set on the hot store's own versions: a refill that read cold before a save
 * (or a destroy) can never overwrite what the save put here.
 */
export async function putHot(
  hot: Store,
  id: string,
  write: HotWrite,
  hotTtl: number,
  now = Date.now(),
): Promise<void> {
  const version = versionOf(write)
  let current: SessionRecord | null = null
  for (let attempt = 0; attempt < 6; attempt++) {
    const existing = readEntry(current)
    if (existing?.meta.dead) return
    if (
      current !== null &&
      existing &&
      existing.meta.v >= version &&
      !(write.kind === 'session' && existing.meta.marker)
    )
      return
    if (
      current !== null &&
      existing?.meta.marker &&
      write.kind === 'session' &&
      existing.meta.v > version
    )
      return
    const change = buildChange(write, current, existing, hotTtl, now)
    if (change === null) return
    const result = await hot.save(id, change)
    if (result.ok) return
    current = result.reason === 'conflict' ? result.current : null
  }
  // Six writers in a row beat this one: each of them wrote something at least as new, or
  // marked the entry, so leaving it is safe.
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
): SessionChange | null {
  const base = {
    unset: current === null ? [] : Object.keys(current.data).filter((k) => k !== META_KEY),
    expectedVersion: current === null ? null : current.version,
    userId: null,
  }
  const ttl = (until: number) => Math.min(until, now + hotTtl)
  const empty = (meta: Meta, until: number): SessionChange => ({
    ...base,
    set: { [META_KEY]: JSON.stringify(meta) },
    cookie: {},
    createdAt: now,
    expiresAt: ttl(until),
    idleTimeout: 0,
    keyExpires: {},
  })
  switch (write.kind) {
    case 'dead':
      return empty(
        { v: DEAD_VERSION, e: now + hotTtl, k: now + hotTtl, c: now, dead: true },
        now + hotTtl,
      )
    case 'marker':
      return empty(
        { v: write.version, e: now + hotTtl, k: now + hotTtl, c: now, marker: true },
        now + hotTtl,
      )
    case 'session': {
      const { record } = write
      const meta: Meta = {
        v: record.version,
        e: record.expiresAt,
        k: record.expiresAt,
        c: record.createdAt,
      }
      if (record.userId !== undefined) meta.u = record.userId
      const set: Record<string, string> = Object.create(null)
      for (const key of Object.keys(record.data)) set[key] = record.data[key]!
      set[META_KEY] = JSON.stringify(meta)
      return {
        ...base,
        unset: base.unset.filter((k) => !(k in set)),
        set: { ...set },
        cookie: record.cookie,
        createdAt: record.createdAt,
        expiresAt: ttl(record.expiresAt),
        idleTimeout: record.idleTimeout,
        // Always sent: the entry it replaces may hold lifetimes this record no longer has.
        keyExpires: record.keyExpires ?? {},
      }
    }
    case 'change': {
      const { change, version } = write
      // Only onto the live entry of the version just before; anything else gets a marker.
      if (
        current === null ||
        !existing ||
        existing.meta.marker ||
        existing.meta.v !== version - 1
      ) {
        return empty(
          { v: version, e: change.expiresAt, k: change.expiresAt, c: now, marker: true },
          change.expiresAt,
        )
      }
      const meta: Meta = {
        v: version,
        e: change.expiresAt,
        k: change.expiresAt,
        c: existing.meta.c,
      }
      if (change.userId !== null) meta.u = change.userId
      return {
        set: { ...change.set, [META_KEY]: JSON.stringify(meta) },
        unset: change.unset,
        cookie: change.cookie,
        createdAt: current.createdAt,
        expiresAt: Math.min(current.expiresAt, change.expiresAt),
        idleTimeout: change.idleTimeout,
        userId: null,
        expectedVersion: current.version,
        ...(change.keyExpires && { keyExpires: change.keyExpires }),
      }
    }
  }
}

/** A hot save that changes only an entry's meta, against the version it was read at. */
export function metaChange(raw: SessionRecord, meta: Meta): SessionChange {
  return {
    set: { [META_KEY]: JSON.stringify(meta) },
    unset: [],
    cookie: raw.cookie,
    createdAt: raw.createdAt,
    expiresAt: raw.expiresAt,
    idleTimeout: raw.idleTimeout,
    userId: null,
    expectedVersion: raw.version,
    // The hot store replaces its per-key expiries with each save's: keep them.
    ...(raw.keyExpires && { keyExpires: raw.keyExpires }),
  }
}

/** The whole session a create wrote. */
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
