/**
 * Renewal notes: with ids hashed at rest, a store forwards an old id's hash to the new id's
 * hash, which only the process that renewed can turn back into the new id. It leaves a note:
 * the new id, encrypted under a key derived from the old id (so only a holder of the old id,
 * who reaches the session anyway, can read it), stored for the grace window as a session of its
 * own under a hash of the old id. Another process's request with the old id reads it and hands
 * the browser the new id.
 */
import createDebug from 'debug'
import { ValueCipher } from './at-rest-cipher.js'
import { hashSessionId } from './id-hash.js'
import type { BoundedMap } from './at-rest-map.js'
import type { IdHashCache } from './id-hash-cache.js'
import type { RenewOptions, Store } from './store.js'

const debug = createDebug('concord-session')

/**
 * A store whose sessions live in this process only (MemoryStore, a LayeredStore over one): every
 * renewal made through it is known here, so it needs no notes.
 *
 * @example
 * ```ts
 * class MyStore implements Store, InProcess { readonly inProcess = true; ... }
 * ```
 */
export interface InProcess {
  readonly inProcess: boolean
}

/**
 * Whether `store` lives in this process only.
 *
 * @example
 * ```ts
 * isInProcess(new MemoryStore()) // true
 * ```
 */
export function isInProcess(store: Store): boolean {
  return (store as Partial<InProcess>).inProcess === true
}

/**
 * Leaves the note of a renewal from `oldId` to `newId`. Best effort: without it, other
 * processes' requests go on under the old id, which the store forwards through the grace.
 *
 * @example
 * ```ts
 * await leaveRenewalNote(store, idHashKey, oldId, newId, { now: Date.now(), graceMs: 30_000 })
 * ```
 */
export async function leaveRenewalNote(
  store: Store,
  idHashKey: string | Buffer,
  oldId: string,
  newId: string,
  options: RenewOptions,
): Promise<void> {
  const at = noteId(oldId, idHashKey)
  try {
    await store.save(at, {
      set: { to: noteCipher(oldId, idHashKey).seal(at, 'to', JSON.stringify(newId)) },
      unset: [],
      cookie: {},
      createdAt: options.now,
      expiresAt: options.now + options.graceMs,
      idleTimeout: options.graceMs,
      userId: null,
      expectedVersion: null,
    })
  } catch (err) {
    debug('no renewal note for other processes (they keep the old id in the grace): %O', err)
  }
}

/**
 * The new id the note of `oldId` names, or undefined without a readable note.
 *
 * @example
 * ```ts
 * const newId = await readRenewalNote(store, idHashKey, oldId)
 * ```
 */
export async function readRenewalNote(
  store: Store,
  idHashKey: string | Buffer,
  oldId: string,
): Promise<string | undefined> {
  const at = noteId(oldId, idHashKey)
  const sealed = (await store.load(at))?.data.to
  if (sealed === undefined) return undefined
  try {
    const id: unknown = JSON.parse(noteCipher(oldId, idHashKey).open(at, 'to', sealed, at).text)
    return typeof id === 'string' ? id : undefined
  } catch {
    return undefined // not a note under this key: the old id goes on
  }
}

/**
 * Renewals followed through notes at most. A chain is only as long as the renewals made within
 * one grace window (each forward dies with its grace), and a browser that follows it once gets
 * the newest id; the bound only stops a runaway.
 */
const MAX_NOTE_HOPS = 64

/**
 * The id another process renewed `oldId` to, from the notes it left, if any. The store may
 * have followed several renewals (old → a → b): each note names the next id, so the chain is
 * followed until an id hashes to `storedTo`. Each hop is remembered in `renewed`.
 *
 * @example
 * ```ts
 * const newId = await followRenewalNotes(inner, key, hashes, renewed, oldId, record.renewedTo)
 * ```
 */
export async function followRenewalNotes(
  store: Store,
  idHashKey: string | Buffer,
  hashes: IdHashCache,
  renewed: BoundedMap<string, string>,
  oldId: string,
  storedTo: string,
): Promise<string | undefined> {
  let from = oldId
  for (let hop = 0; hop < MAX_NOTE_HOPS; hop++) {
    const id = renewed.get(`note ${from}`) ?? (await readRenewalNote(store, idHashKey, from))
    if (id === undefined) return undefined
    // Notes never change: remember each hop, so the next request follows the chain here.
    renewed.set(`note ${from}`, id)
    if (hashes.get(id) === storedTo) {
      renewed.set(storedTo, id)
      return id
    }
    from = id
  }
  return undefined
}

function noteId(oldId: string, idHashKey: string | Buffer): string {
  return hashSessionId(`renewed from ${oldId}`, idHashKey)
}

/** The cipher of a note: its key derives from the old id, which only its holder knows. */
function noteCipher(oldId: string, idHashKey: string | Buffer): ValueCipher {
  return new ValueCipher([
    Buffer.from(hashSessionId(`renewal note key ${oldId}`, idHashKey), 'base64url'),
  ])
}
