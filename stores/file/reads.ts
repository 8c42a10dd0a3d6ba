/**
 * The lock-free paths of FileStore: a load and a touch open the session file and change at most
 * its mtime (the idle expiry), never its data, so they take no lock.
 */
import createDebug from 'debug'
import type { LoadOptions, SessionRecord, StoreError } from '../../lib/store.js'
import { isValidSessionId, touchIsDue, touchedExpiry, withoutExpiredKeys } from '../../lib/store.js'
import type { Slot, Slots } from './format.js'
import { isForwardStat, readOpen, seenAt, toRecord } from './format.js'
import { forwarded } from '../../lib/store-renewal.js'
import * as f from './fs.js'

const debug = createDebug('concord-session:file')

/** What a load and a touch need of their store. */
export interface SessionReads {
  slots: Slots
  fail(what: string, err: unknown): StoreError
  /** Removes an expired or corrupt file that a load found, under its lock. */
  cleanup(slot: Slot, what: 'expired' | 'corrupt', reason: string): Promise<void>
}

/** FileStore.load: one open, touch-on-load as an mtime change. */
export async function loadSession(
  store: SessionReads,
  id: string,
  options: LoadOptions = {},
): Promise<SessionRecord | null> {
  if (!isValidSessionId(id)) return null
  const slot = store.slots.get(id)
  const openedAt = Date.now()
  let fd: number
  try {
    fd = await f.fsOpen(slot.file, 'r')
  } catch (err) {
    slot.seen = undefined
    if (f.isCode(err, 'ENOENT')) return null // unknown id: one failed open, nothing else
    throw store.fail('read a session', err)
  }

  let record: SessionRecord | null = null
  let forward: string | undefined
  let cleanup: 'expired' | 'corrupt' | undefined
  let reason = ''
  slot.seen = undefined
  try {
    const st = await f.fsFstat(fd)
    const read = await readOpen(fd, id, st)
    if (read.kind === 'forward') {
      // A renewed id: within its grace it reaches the session it was renewed to.
      if (read.expiresAt > Date.now()) forward = read.to
      else cleanup = 'expired'
    } else if (read.kind !== 'ok') {
      cleanup = 'corrupt'
      reason = read.kind === 'corrupt' ? read.reason : 'empty'
    } else {
      const now = Date.now()
      let expiresAt = read.expiresAt
      if (expiresAt <= now) {
        cleanup = 'expired'
      } else if (options.touchAt !== undefined) {
        const touched = touchedExpiry(read.file, options.touchAt, options.absoluteTimeout)
        if (touched <= now) {
          // Past its absolute timeout: mark this very inode expired (a save that replaced the
          // file meanwhile is not affected), then remove it below.
          cleanup = 'expired'
          await f
            .fsFutimes(fd, now / 1000, touched / 1000)
            .catch((err: unknown) => debug('could not expire %s: %O', slot.key, err))
        } else if (touched !== expiresAt && touchIsDue(expiresAt, touched, options.touchAfter)) {
          // The touch is metadata only: the data is never rewritten without the version check.
          await f.fsFutimes(fd, now / 1000, touched / 1000)
          expiresAt = touched
        }
      }
      if (cleanup === undefined) {
        // Keys past their own lifetime are left out; the next save leaves them out of the file.
        record = withoutExpiredKeys(toRecord(read.file, expiresAt), now)
        slot.seen = seenAt(st, read.file, openedAt)
      }
    }
  } catch (err) {
    throw store.fail('read a session', err)
  } finally {
    await f.fsClose(fd).catch(f.ignore)
  }

  if (cleanup !== undefined) {
    // Best effort: the answer is null either way, and the reaper retries what fails here.
    await store
      .cleanup(slot, cleanup, reason)
      .catch((err: unknown) => debug('could not clean up %s: %O', slot.key, err))
  }
  if (forward !== undefined) return forwarded(await loadSession(store, forward, options), forward)
  return record
}

/** FileStore.touch: moves the idle expiry of a live session; never brings an expired one back. */
export async function touchSession(
  store: SessionReads,
  id: string,
  expiresAt: number,
): Promise<void> {
  if (!isValidSessionId(id)) return
  let fd: number
  try {
    fd = await f.fsOpen(store.slots.get(id).file, 'r')
  } catch (err) {
    if (f.isCode(err, 'ENOENT')) return
    throw store.fail('touch a session', err)
  }
  let forward: string | undefined
  try {
    // An expired session stays expired: a touch must not bring it back.
    const st = await f.fsFstat(fd)
    if (Math.round(st.mtimeMs) <= Date.now()) return
    if (!isForwardStat(st)) await f.fsFutimes(fd, Date.now() / 1000, expiresAt / 1000)
    else {
      // A renewed id within its grace: the touch is for the session it forwards to.
      const read = await readOpen(fd, id, st)
      if (read.kind === 'forward') forward = read.to
    }
  } catch (err) {
    throw store.fail('touch a session', err)
  } finally {
    await f.fsClose(fd).catch(f.ignore)
  }
  if (forward !== undefined) await touchSession(store, forward, expiresAt)
}
