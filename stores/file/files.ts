/**
 * Session files on disk: reading one (or trusting what a load saw), writing one atomically under
 * its lock, and moving an unreadable one aside.
 */
import type { Stats } from 'node:fs'
import * as fs from 'node:fs'
import { link } from 'node:fs/promises'
import { join } from 'node:path'
import createDebug from 'debug'
import type { Read, Slot } from './format.js'
import { keyOf, readOpen, stillSeen } from './format.js'
import * as f from './fs.js'
import type { Held, Locks } from './lock.js'

const debug = createDebug('concord-session:file')

export class SessionFiles {
  readonly #tmp: string
  readonly #corrupt: string
  readonly #fsync: boolean
  readonly #locks: Locks

  constructor(dirs: { tmp: string; corrupt: string }, fsync: boolean, locks: Locks) {
    this.#tmp = dirs.tmp
    this.#corrupt = dirs.corrupt
    this.#fsync = fsync
    this.#locks = locks
  }

  /** Reads a session file; `id`, when known, must match the id inside. Never throws ENOENT. */
  async read(slot: Slot, id?: string): Promise<Read> {
    let fd: number
    try {
      fd = await f.fsOpen(slot.file, 'r')
    } catch (err) {
      if (f.isCode(err, 'ENOENT')) return { kind: 'missing' }
      throw err
    }
    try {
      const read = await readOpen(fd, id)
      if (read.kind === 'ok' && id === undefined && keyOf(read.file.id) !== slot.key) {
        return { kind: 'corrupt', reason: 'the id inside does not match the file name' }
      }
      return read
    } finally {
      await f.fsClose(fd).catch(f.ignore)
    }
  }

  /**
   * The session as it is now, under its lock: one stat when it is still the file the last load of
   * this id read (see `Seen` in format.ts), a full read otherwise.
   */
  async readCurrent(slot: Slot, id: string): Promise<Read> {
    const seen = slot.seen
    slot.seen = undefined // this save replaces the file: what was seen is spent either way
    if (seen === undefined) return this.read(slot, id)
    let st: Stats
    try {
      st = await f.fsStat(slot.file)
    } catch (err) {
      if (f.isCode(err, 'ENOENT')) return { kind: 'missing' }
      throw err
    }
    if (!stillSeen(st, seen)) return this.read(slot, id)
    return { kind: 'ok', file: seen.file, expiresAt: Math.round(st.mtimeMs) }
  }

  /**
   * Writes a whole session file atomically: temp file, (fsync), rename. Its mtime is the expiry.
   * `mode` is 0o600, or FORWARD_MODE for a renewal's forward (see format.ts).
   * The temp file is named after the lock, so a sweep can tell an unfinished write from a live one.
   */
  async write(
    slot: Slot,
    held: Held,
    text: string,
    expiresAt: number,
    deadline: number | undefined,
    mode = 0o600,
  ): Promise<void> {
    const temp = `${this.#tmp}/${slot.key}.${held.text}`
    let fd: number | undefined
    try {
      fd = await f.fsOpen(temp, 'wx', mode)
      await f.fsWriteAll(fd, Buffer.from(text, 'utf8'))
      // After the last write, or the write would move the mtime again.
      await f.fsFutimes(fd, Date.now() / 1000, expiresAt / 1000)
      // Without this, a power cut after the rename could leave the name on an empty inode.
      // The directory is not fsynced: a crash may then lose this last save, but the name
      // always points at a whole file, old or new.
      if (this.#fsync) await f.fsFsync(fd)
      const closing = fd
      fd = undefined
      await f.fsClose(closing)
      // The commit point: past the deadline, or with the lease too short to trust, nothing lands.
      this.#locks.assertHeld(held, deadline)
      await f.fsRename(temp, slot.file)
    } catch (err) {
      if (fd !== undefined) fs.close(fd, f.ignore)
      await f.unlinkQuiet(temp).catch(f.ignore)
      throw err
    }
  }

  /** Moves a corrupt file to corrupt/ for an operator to inspect, instead of deleting it. */
  async moveAside(slot: Slot, reason: string): Promise<void> {
    // link() fails with EEXIST where rename() would replace: two files of one session moved aside
    // in the same millisecond both stay (the later one under the next free millisecond).
    let dest: string
    for (let at = Date.now(); ; at++) {
      dest = join(this.#corrupt, `${slot.key}.${at}.json`)
      try {
        await link(slot.file, dest)
        break
      } catch (err) {
        if (f.isCode(err, 'ENOENT')) return
        if (!f.isCode(err, 'EEXIST')) throw err
      }
    }
    await f.unlinkQuiet(slot.file)
    debug('session file %s is corrupt (%s): moved it to %s', slot.file, reason, dest)
  }
}
