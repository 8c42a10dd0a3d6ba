/**
 * The on-disk format: one JSON document per session, named by a digest of its id, and the
 * per-id slots that remember a session's names and what the last load saw.
 */
import type { Stats } from 'node:fs'
import { createHash } from 'node:crypto'
import type { CookieOverrides, SessionRecord } from '../../lib/store.js'
import { isValidSessionId } from '../../lib/store.js'
import { fsFstat, fsRead } from './fs.js'
import { withOwner } from '../../lib/session-data.js'
import { checkKeyExpiries } from '../../lib/key-expiry.js'

/** The JSON document in one session file. */
export interface SessionFile {
  format: 1
  id: string
  version: number
  createdAt: number
  idleTimeout: number
  userId?: string
  cookie: CookieOverrides
  /** Epoch ms at which each key with a lifetime of its own expires; absent when none has. */
  keyExpires?: Record<string, number>
  /**
   * Each value is the JSON text the core gave us, embedded as a string so it round-trips exactly.
   */
  data: Record<string, string>
  /** Epoch ms this id was issued by a renewal; absent for an id never renewed. */
  renewedAt?: number
}

/**
 * What a renewal leaves at the old id's name (see renew.ts): the id the session moved to. The
 * file's mtime is the end of the grace, and the file is read-only (no owner write bit), so a
 * listing that only stats files (count) tells it from a session.
 */
export interface ForwardFile {
  format: 1
  id: string
  renewedTo: string
}

/** The mode of a forward file; session files are 0o600. */
export const FORWARD_MODE = 0o400

/** True when `st` is a forward file's stat (see {@link ForwardFile}). */
export function isForwardStat(st: Stats): boolean {
  return (st.mode & 0o200) === 0
}

export type Read =
  | { kind: 'missing' }
  | { kind: 'corrupt'; reason: string }
  | { kind: 'ok'; file: SessionFile; expiresAt: number }
  /** A renewed id: `to` is where the session went; `expiresAt` is the end of the grace. */
  | { kind: 'forward'; to: string; expiresAt: number }

/** A digest file name: 64 hex digits. */
export const KEY = /^[0-9a-f]{64}$/
export const SESSION_FILE = /^([0-9a-f]{64})\.json$/

/** File names are digests: fixed length, hex only, whatever the id or user id holds. */
export function keyOf(value: string): string {
  return createHash('sha256').update(value).digest('hex')
}

/**
 * Reads the whole file behind `fd` and checks its shape. The size comes from fstat: a file is never
 * modified after its rename.
 */
export async function readOpen(fd: number, id: string | undefined, st?: Stats): Promise<Read> {
  st ??= await fsFstat(fd)
  const buf = Buffer.allocUnsafe(st.size)
  let filled = 0
  while (filled < st.size) {
    const bytesRead = await fsRead(fd, buf, filled, st.size - filled, filled)
    if (bytesRead === 0) break
    filled += bytesRead
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(buf.toString('utf8', 0, filled))
  } catch (err) {
    return { kind: 'corrupt', reason: `not JSON: ${(err as Error).message}` }
  }
  const problem =
    isObject(parsed) && 'renewedTo' in parsed ? checkForward(parsed) : checkFile(parsed)
  if (problem) return { kind: 'corrupt', reason: problem }
  const file = parsed as SessionFile | ForwardFile
  if (id !== undefined && file.id !== id)
    return { kind: 'corrupt', reason: 'the id inside does not match the file name' }
  // utimes stores the expiry with sub-ms precision loss; rounding gives back the exact ms.
  const expiresAt = Math.round(st.mtimeMs)
  if ('renewedTo' in file) return { kind: 'forward', to: file.renewedTo, expiresAt }
  return { kind: 'ok', file, expiresAt }
}

function checkFile(value: unknown): string | undefined {
  if (!isObject(value)) return 'not an object'
  if (value.format !== 1) return 'unknown format'
  if (typeof value.id !== 'string' || !isValidSessionId(value.id)) return 'bad id'
  if (!Number.isSafeInteger(value.version) || (value.version as number) < 1) return 'bad version'
  if (!Number.isFinite(value.createdAt) || !Number.isFinite(value.idleTimeout)) return 'bad times'
  if (value.userId !== undefined && typeof value.userId !== 'string') return 'bad userId'
  if (!isObject(value.cookie)) return 'bad cookie'
  if (value.keyExpires !== undefined) {
    const problem = checkKeyExpiries(value.keyExpires)
    if (problem) return `bad keyExpires: ${problem}`
  }
  if (value.renewedAt !== undefined && !Number.isFinite(value.renewedAt)) return 'bad renewedAt'
  if (!isObject(value.data)) return 'bad data'
  for (const k of Object.keys(value.data))
    if (typeof value.data[k] !== 'string') return `bad data key ${JSON.stringify(k)}`
  return undefined
}

function checkForward(value: Record<string, unknown>): string | undefined {
  if (value.format !== 1) return 'unknown format'
  if (typeof value.id !== 'string' || !isValidSessionId(value.id)) return 'bad id'
  if (!isValidSessionId(value.renewedTo)) return 'bad renewedTo'
  return undefined
}

export function toRecord(file: SessionFile, expiresAt: number): SessionRecord {
  const record = withOwner(
    {
      data: file.data,
      cookie: file.cookie,
      createdAt: file.createdAt,
      expiresAt,
      idleTimeout: file.idleTimeout,
      version: file.version,
    },
    file.userId,
  )
  if (file.keyExpires !== undefined) record.keyExpires = file.keyExpires
  if (file.renewedAt !== undefined) record.renewedAt = file.renewedAt
  return record
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * What a load saw of a session file, so that a save right after it can tell with one stat that
 * the file is still the same one and skip reading it again.
 *
 * Writers never change a session file in place: every save renames a new inode over the name.
 * So the same inode means the same data (a touch moves only the mtime). An inode number can be
 * reused once the old file is freed, so the birth time must match too, and it is trusted only when
 * the file was born well before the load began: a file born later has a later birth time, even
 * on a file system whose timestamps tick once per jiffy. Where birth times are not kept (0), the
 * file is always read again.
 */
export interface Seen {
  ino: number
  size: number
  birthtimeMs: number
  file: SessionFile
}

/** How far before a load a file's birth must be for the load's view to be trusted later. */
const RACY_MS = 50

/**
 * A `Seen` for the file a load opened at `openedAt`, or undefined when a later stat could not tell
 * it apart.
 */
export function seenAt(st: Stats, file: SessionFile, openedAt: number): Seen | undefined {
  if (!(st.birthtimeMs > 0 && st.birthtimeMs < openedAt - RACY_MS)) return undefined
  return { ino: st.ino, size: st.size, birthtimeMs: st.birthtimeMs, file }
}

/** True when `st` (a stat of the session's name now) is the very file `seen` describes. */
export function stillSeen(st: Stats, seen: Seen): boolean {
  return st.ino === seen.ino && st.birthtimeMs === seen.birthtimeMs && st.size === seen.size
}

/** One session id's file names, worked out once, and what the last load saw. */
export interface Slot {
  key: string
  file: string
  lock: string
  seen: Seen | undefined
}

/**
 * A bounded map from session id to its {@link Slot}, so the digest and the paths are computed once
 * per id while it is in use, not on every call. Oldest entries go first when it is full.
 */
export class Slots {
  readonly #slots = new Map<string, Slot>()
  readonly #sessions: string
  readonly #locks: string
  readonly #max: number

  constructor(sessions: string, locks: string, max = 1024) {
    this.#sessions = sessions
    this.#locks = locks
    this.#max = max
  }

  get(id: string): Slot {
    let slot = this.#slots.get(id)
    if (slot === undefined) {
      if (this.#slots.size >= this.#max) this.#slots.delete(this.#slots.keys().next().value!)
      const key = keyOf(id)
      slot = {
        key,
        file: `${this.#sessions}/${key}.json`,
        lock: `${this.#locks}/${key}`,
        seen: undefined,
      }
      this.#slots.set(id, slot)
    }
    return slot
  }

  /** The slot of a key whose id is not known (the reaper, the user index). */
  byKey(key: string): Slot {
    return {
      key,
      file: `${this.#sessions}/${key}.json`,
      lock: `${this.#locks}/${key}`,
      seen: undefined,
    }
  }

  get size(): number {
    return this.#slots.size
  }
}
