/**
 * The session as express-session stores it, and back: pure functions, no store and no I/O.
 *
 * A blob is `{ cookie: { originalMaxAge, expires, secure, httpOnly, domain, path, sameSite, ... },
 * ...data, __concord: meta }`. The cookie is the one express-session would write, so a process
 * still on express-session reads the session, and a store's TTL logic (connect-redis reads
 * `cookie.expires`, memorystore `cookie.maxAge`) sees the right lifetime. The fields a
 * SessionRecord has beyond that live under one top-level key, `__concord`, which
 * express-session keeps as an ordinary session property and writes back unchanged.
 */
import type { CookieAttributes } from '../cookie.js'
import { defineKey } from '../util.js'
import type { CookieOverrides, SessionRecord } from '../store.js'
import { StoreError } from '../store.js'
import { ONE_DAY_MS } from '../time.js'

/** The top-level key that holds {@link ExpressSessionMeta}. */
export const META_KEY = '__concord'

/** What a SessionRecord has that express-session's blob has not. */
export interface ExpressSessionMeta {
  version: number
  createdAt: number
  /** The idle expiry as of the last write or rewrite by this adapter. */
  expiresAt: number
  idleTimeout: number
  userId?: string
  /** The per-session cookie overrides, exactly as the core gave them. */
  cookie: CookieOverrides
  /** Data keys whose names the blob uses itself ("cookie", "__concord"), as JSON text. */
  reservedKeys?: Record<string, string>
}

/** A session as express-session stores it (a "blob"): the stored session object. */
export type ExpressSessionData = Record<string, unknown> & { cookie?: unknown }

/** The idle period given to a session written by express-session whose cookie has no maxAge. */
export const EXPRESS_SESSION_IDLE_TIMEOUT = ONE_DAY_MS

/**
 * Builds the blob for a record. `cookieDefaults` are the middleware's cookie options; without
 * them, a session with no per-session maxAge records its idle period as `originalMaxAge`,
 * so the store's TTL still follows the server-side expiry.
 *
 * @example
 * ```ts
 * toBlob({ data: { views: '3' }, cookie: {}, createdAt, expiresAt, idleTimeout, version: 2 }, { path: '/', maxAge: null })
 * // { cookie: { originalMaxAge: null, expires: null, httpOnly: true, path: '/' }, views: 3, __concord: { version: 2, ... } }
 * ```
 */
export function toBlob(
  record: SessionRecord,
  cookieDefaults?: CookieAttributes,
): ExpressSessionData {
  const blob: ExpressSessionData = { cookie: blobCookie(record, cookieDefaults) }
  const meta: ExpressSessionMeta = {
    version: record.version,
    createdAt: record.createdAt,
    expiresAt: record.expiresAt,
    idleTimeout: record.idleTimeout,
    cookie: { ...record.cookie },
  }
  if (record.userId !== undefined) meta.userId = record.userId
  for (const key of Object.keys(record.data)) {
    const text = record.data[key]!
    if (key === 'cookie' || key === META_KEY) (meta.reservedKeys ??= {})[key] = text
    else defineKey(blob, key, JSON.parse(text))
  }
  blob[META_KEY] = meta
  return blob
}

/**
 * Reads a blob written by this adapter or by express-session. A blob without (valid) meta
 * is express-session's: version 0, created now, its cookie's maxAge kept as a per-session
 * setting (as express-session pins it per session).
 *
 * @example
 * ```ts
 * fromBlob({ cookie: { originalMaxAge: 60000, expires: '2030-01-01T00:00:00.000Z' }, views: 3 }, Date.now())
 * // { data: { views: '3' }, cookie: { originalMaxAge: 60000 }, version: 0, expiresAt: 1893456000000, ... }
 * ```
 */
export function fromBlob(
  id: string,
  blob: unknown,
  now: number,
  cookieDefaults?: CookieAttributes,
): SessionRecord {
  if (typeof blob !== 'object' || blob === null || Array.isArray(blob)) {
    throw new StoreError(
      `session ${id}: the store returned ${blob === null ? 'null' : typeof blob}, not a session ` +
        `object`,
      { code: 'ECORRUPT' },
    )
  }
  const source = blob as ExpressSessionData
  const meta = readMeta(source[META_KEY])
  const data: Record<string, string> = {}
  for (const key of Object.keys(source)) {
    if (key === 'cookie' || (key === META_KEY && meta)) continue
    const text = toJsonText(id, key, source[key])
    if (text !== undefined) defineKey(data, key, text)
  }
  if (meta?.reservedKeys)
    for (const key of Object.keys(meta.reservedKeys)) defineKey(data, key, meta.reservedKeys[key])

  const cookie =
    typeof source.cookie === 'object' && source.cookie !== null
      ? (source.cookie as Record<string, unknown>)
      : {}
  const blobMaxAge = readMaxAge(cookie.originalMaxAge)
  const blobExpires = readTime(cookie.expires)

  if (meta) {
    const overrides: CookieOverrides = { ...meta.cookie }
    // An express-session process may have changed the maxAge ("remember me"): its cookie says so.
    if (
      blobMaxAge !== undefined &&
      blobMaxAge !== recordedMaxAge(overrides, meta.idleTimeout, cookieDefaults)
    ) {
      overrides.originalMaxAge = blobMaxAge
    }
    const record: SessionRecord = {
      data,
      cookie: overrides,
      createdAt: meta.createdAt,
      // A store's touch or an express-session process may have moved cookie.expires on since.
      expiresAt: Math.max(meta.expiresAt, blobExpires ?? -Infinity),
      idleTimeout: meta.idleTimeout,
      version: meta.version,
    }
    if (meta.userId !== undefined) record.userId = meta.userId
    return record
  }

  const idleTimeout = blobMaxAge ?? EXPRESS_SESSION_IDLE_TIMEOUT
  return {
    data,
    cookie: blobMaxAge === undefined ? {} : { originalMaxAge: blobMaxAge },
    createdAt: now,
    expiresAt: blobExpires ?? now + idleTimeout,
    idleTimeout,
    version: 0,
  }
}

/** The `originalMaxAge` {@link toBlob} writes for these overrides. */
function recordedMaxAge(
  overrides: CookieOverrides,
  idleTimeout: number,
  cookieDefaults: CookieAttributes | undefined,
): number | null {
  if ('originalMaxAge' in overrides) return overrides.originalMaxAge ?? null
  return cookieDefaults ? (cookieDefaults.maxAge ?? null) : idleTimeout
}

/**
 * express-session's Cookie#data, in its key order. `maxAge` is a non-enumerable getter, as on
 * express-session's Cookie: memorystore reads it for its TTL, and JSON leaves it out.
 */
function blobCookie(
  record: SessionRecord,
  defaults: CookieAttributes | undefined,
): Record<string, unknown> {
  const originalMaxAge = recordedMaxAge(record.cookie, record.idleTimeout, defaults)
  const merged = { ...defaults, ...record.cookie }
  const expires = originalMaxAge === null ? null : new Date(record.expiresAt)
  const cookie: Record<string, unknown> = {
    originalMaxAge,
    partitioned: merged.partitioned,
    priority: merged.priority,
    expires,
    // express-session stores the resolved flag, and nothing when it is off; 'auto' is
    // recorded as the safe choice.
    secure: merged.secure === 'auto' ? true : merged.secure || undefined,
    httpOnly: merged.httpOnly ?? true,
    domain: merged.domain,
    path: merged.path ?? '/',
    sameSite: merged.sameSite,
  }
  for (const key of Object.keys(cookie)) if (cookie[key] === undefined) delete cookie[key]
  Object.defineProperty(cookie, 'maxAge', {
    enumerable: false,
    get: () => (expires === null ? null : expires.getTime() - Date.now()),
  })
  return cookie
}

function readMeta(value: unknown): ExpressSessionMeta | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const meta = value as Partial<ExpressSessionMeta>
  const numbers = [meta.version, meta.createdAt, meta.expiresAt, meta.idleTimeout]
  if (!numbers.every((n) => typeof n === 'number' && Number.isFinite(n))) return undefined
  if (meta.userId !== undefined && typeof meta.userId !== 'string') return undefined
  if (typeof meta.cookie !== 'object' || meta.cookie === null) return undefined
  if (
    meta.reservedKeys !== undefined &&
    (typeof meta.reservedKeys !== 'object' || meta.reservedKeys === null)
  )
    return undefined
  return meta as ExpressSessionMeta
}

function toJsonText(id: string, key: string, value: unknown): string | undefined {
  try {
    return JSON.stringify(value)
  } catch (cause) {
    throw new StoreError(`session ${id}: stored key "${key}" cannot be read as JSON`, {
      cause,
      code: 'ECORRUPT',
    })
  }
}

/** `originalMaxAge` as stored: a number of ms, `null`, or absent (undefined). */
function readMaxAge(value: unknown): number | null | undefined {
  if (value === null) return null
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined
}

/** `cookie.expires` as a Date, an ISO string (after JSON), or epoch ms; null when absent. */
function readTime(value: unknown): number | null {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.getTime()
  if (typeof value === 'string' || typeof value === 'number') {
    const ms = new Date(value).getTime()
    return Number.isNaN(ms) ? null : ms
  }
  return null
}
