/**
 * Id renewal for the file store (the `Renewable` capability of lib/store.ts).
 *
 * A renewal writes the session under the new id's name, then replaces the old id's file with a
 * forward (see `ForwardFile` in format.ts) whose mtime is the end of the grace, and moves the
 * user index entry. It holds the locks of both ids, taken in the order of their file keys, so two
 * renewals never wait for each other in a cycle; for a session with an owner it takes the
 * owner's lock first, as a limited sign-in does, so counting a user's sessions never sees the
 * session twice. A save, touch or destroy of the old id that finds the forward lets go of the
 * old id's lock and acts on the new id; the forward never changes, so nothing is lost between.
 * The reaper removes a forward past its grace as it removes an expired session.
 */
import type { RenewOptions, RenewResult, SaveResult } from '../../lib/store.js'
import { StoreError, isValidSessionId } from '../../lib/store.js'
import { checkRenewOptions } from '../../lib/store-renewal.js'
import type { SessionFiles } from './files.js'
import type { ForwardFile, SessionFile, Slot, Slots } from './format.js'
import { FORWARD_MODE, keyOf } from './format.js'
import type { Held } from './lock.js'
import type { UserDirectory } from './users.js'

/** What a renewal needs of its store. */
export interface RenewTarget {
  slots: Slots
  files: SessionFiles
  users: UserDirectory
  /** Runs `fn` holding the lock of `slot` (in this process and between processes). */
  underLock<T>(what: string, slot: Slot, fn: (held: Held) => Promise<T>): Promise<T>
}

/** A renewal whose session changed owner between its look and its locks: it looks again. */
const RETRY = Symbol('retry')
/** Looks at most, for a session whose owner keeps changing under a renewal. */
const MAX_LOOKS = 5

/**
 * Renews `oldId` as `newId`: the session moves with its data, version, owner, created time and
 * expiry, and `oldId` forwards to it until `now + graceMs` (never past its expiry).
 *
 * @example
 * ```ts
 * await renewFile(target, 'old', 'new', { now: Date.now(), graceMs: 30_000 })
 * ```
 */
export async function renewFile(
  target: RenewTarget,
  oldId: string,
  newId: string,
  options: RenewOptions,
): Promise<RenewResult> {
  for (const id of [oldId, newId])
    if (!isValidSessionId(id))
      throw new TypeError(
        `FileStore: renew needs valid session ids, got ${JSON.stringify(String(id).slice(0, 64))}`,
      )
  checkRenewOptions('FileStore', options)
  const { slots, files, underLock } = target
  const oldSlot = slots.get(oldId)
  const newSlot = slots.get(newId)
  if (oldSlot.key === newSlot.key) {
    // The new id is the old one: it is in use (by this very session), or the session is gone.
    const read = await underLock('renew a session', oldSlot, () => files.read(oldSlot, oldId))
    if (read.kind === 'forward' && read.expiresAt > Date.now())
      return { ok: false, reason: 'renewed', id: read.to }
    return read.kind === 'ok' && read.expiresAt > Date.now()
      ? { ok: false, reason: 'taken' }
      : { ok: false, reason: 'gone' }
  }
  for (let look = 0; look < MAX_LOOKS; look++) {
    const peek = await files.read(oldSlot, oldId)
    const owner = peek.kind === 'ok' ? peek.file.userId : undefined
    const [first, second] = oldSlot.key < newSlot.key ? [oldSlot, newSlot] : [newSlot, oldSlot]
    const locked = () =>
      underLock('renew a session', first, (heldFirst) =>
        underLock('renew a session', second, (heldSecond) => {
          const held = first === oldSlot ? [heldFirst, heldSecond] : [heldSecond, heldFirst]
          return move(target, { oldId, newId, oldSlot, newSlot, owner, options }, held)
        }),
      )
    const result =
      owner === undefined
        ? await locked()
        : await underLock('renew a session', slots.byKey(keyOf(`user:${owner}`)), locked)
    if (result !== RETRY) return result
  }
  throw new StoreError(
    `FileStore: session ${oldId} kept changing owner while it was renewed; it was not renewed`,
    { code: 'EBUSY' },
  )
}

interface Move {
  oldId: string
  newId: string
  oldSlot: Slot
  newSlot: Slot
  /** The owner whose lock is held (undefined: none). */
  owner: string | undefined
  options: RenewOptions
}

/** The renewal itself, under the locks of both ids (and of the owner). */
async function move(
  target: RenewTarget,
  { oldId, newId, oldSlot, newSlot, owner, options }: Move,
  [heldOld, heldNew]: Held[],
): Promise<RenewResult | typeof RETRY> {
  const { files, users } = target
  const read = await files.read(oldSlot, oldId)
  const now = Date.now()
  if (read.kind === 'forward')
    return read.expiresAt > now
      ? { ok: false, reason: 'renewed', id: read.to }
      : { ok: false, reason: 'gone' }
  if (read.kind !== 'ok' || read.expiresAt <= now) return { ok: false, reason: 'gone' }
  if (read.file.userId !== owner) return RETRY
  const taken = await files.read(newSlot, newId)
  // A file that cannot be read is left for an operator, never written over.
  if (taken.kind === 'corrupt' || (taken.kind !== 'missing' && taken.expiresAt > now))
    return { ok: false, reason: 'taken' }

  const moved: SessionFile = { ...read.file, id: newId, renewedAt: options.now }
  const forward: ForwardFile = { format: 1, id: oldId, renewedTo: newId }
  const until = Math.min(options.now + options.graceMs, read.expiresAt)
  // Index entry first and old entry last, as a save does: a crash leaves an extra entry at worst.
  if (owner !== undefined) await users.add(owner, newSlot.key)
  await files.write(newSlot, heldNew!, JSON.stringify(moved), read.expiresAt, undefined)
  await files.write(oldSlot, heldOld!, JSON.stringify(forward), until, undefined, FORWARD_MODE)
  if (owner !== undefined) await users.remove(owner, oldSlot.key)
  return { ok: true }
}

/** Saves answered 'gone' because their id forwards: the id the save must be made under. */
const MOVED = new WeakMap<SaveResult, string>()

/**
 * The answer of a save that found a forward to `to` under its lock: the caller lets go of the
 * lock and saves under `to` (see {@link movedTo}).
 *
 * @example
 * ```ts
 * if (read.kind === 'forward') return movedResult(read.to)
 * ```
 */
export function movedResult(to: string): SaveResult {
  const result: SaveResult = { ok: false, reason: 'gone' }
  MOVED.set(result, to)
  return result
}

/**
 * The id a save must be made under instead, if `result` came from {@link movedResult}.
 *
 * @example
 * ```ts
 * const to = movedTo(result)
 * if (to !== undefined) return save(to, change)
 * ```
 */
export function movedTo(result: SaveResult): string | undefined {
  return MOVED.get(result)
}
