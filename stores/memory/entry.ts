import { StoreError, type CookieOverrides } from '../../lib/store.js'
import { expiredKeys } from '../../lib/key-expiry.js'
import { defineKey } from '../../lib/util.js'

/**
 * One session, kept small: a class (one hidden class for all entries), times relative to the
 * store's start (small integers, held unboxed, where epoch ms would each be a separate heap
 * number), one shared object for "no cookie overrides", and the owner in a map of its own
 * since most sessions have none. Data is packed: the values' JSON text joined into one string,
 * and the keys in a list shared by every session with the same keys (see KeyLists), so a
 * session holds one string where it would hold an object and a string per key.
 */
export class Entry {
  constructor(
    /** The keys, in the order of the packed values; `undefined` when `data` is not packed. */
    public keys: readonly string[] | undefined,
    /** The values joined by SEPARATOR, or (a key or value holding it) the data as an object. */
    public data: string | Record<string, string>,
    public cookie: CookieOverrides,
    /** ms since the store's base. */
    public created: number,
    /** ms since the store's base. */
    public expires: number,
    public idleTimeout: number,
    public version: number,
    /** ms since the store's base this id was issued by a renewal; -1 if never renewed. */
    public renewed = -1,
    /** Per-key expiries (epoch ms), or undefined when no key has a lifetime of its own. */
    public keyExpires: Record<string, number> | undefined = undefined,
  ) {}
}

/**
 * Joins packed values. JSON text never holds a raw U+0000 (JSON.stringify writes it as
 * `\u0000`, and RFC 8259 section 7 forbids it unescaped), so splitting on it is exact; data
 * holding one anyway (a key, or text that is not JSON) stays an object.
 */
export const SEPARATOR = '\u0000'

/**
 * Key lists shared between entries: sessions of one app mostly have the same few sets of keys.
 * Bounded, so an app with ever-new key sets costs one list per entry instead, never more.
 */
export class KeyLists {
  readonly #lists = new Map<string, readonly string[]>()

  shared(keys: string[]): readonly string[] {
    const signature = keys.join(SEPARATOR)
    const known = this.#lists.get(signature)
    if (known) return known
    if (this.#lists.size < 1024) this.#lists.set(signature, keys)
    return keys
  }
}

/** The cookie overrides of every session that has none, shared. */
export const NO_COOKIE: CookieOverrides = Object.freeze({})

/** A new data object (the caller's to change) with the entry's keys and values. */
export function unpack(entry: Entry): Record<string, string> {
  const { keys, data } = entry
  if (keys === undefined) return { ...(data as Record<string, string>) }
  const out: Record<string, string> = {}
  if (keys.length === 0) return out
  const values = (data as string).split(SEPARATOR)
  for (let i = 0; i < keys.length; i++) defineKey(out, keys[i]!, values[i]!)
  return out
}

/**
 * Writes `set` into a packed entry when it only changes values of keys the entry has (the usual
 * save): no data object is built, and the entry keeps its key list. False, with the entry as it
 * was, when it cannot: a new key, a value holding the separator, or data not packed.
 */
export function repack(entry: Entry, set: Record<string, string>): boolean {
  const { keys } = entry
  if (keys === undefined) return false
  let values: string[] | undefined
  for (const key in set) {
    if (!Object.hasOwn(set, key)) continue
    const value = set[key]!
    const at = keys.indexOf(key)
    if (at === -1 || value.includes(SEPARATOR)) return false
    values ??= (entry.data as string).split(SEPARATOR)
    values[at] = value
  }
  if (values !== undefined) entry.data = values.join(SEPARATOR)
  return true
}

/** Whether the object has an own key. */
export function hasKeys(object: object): boolean {
  for (const key in object) if (Object.hasOwn(object, key)) return true
  return false
}

/** Stores `data` in `entry`, packed unless a key or value holds the separator. */
export function pack(entry: Entry, data: Record<string, string>, lists: KeyLists): void {
  const keys: string[] = []
  const values: string[] = []
  for (const key in data) {
    const value = data[key]!
    if (key.includes(SEPARATOR) || value.includes(SEPARATOR)) {
      entry.keys = undefined
      entry.data = { ...data } // a fresh object: `data` may be in dictionary mode after deletes
      return
    }
    keys.push(key)
    values.push(value)
  }
  entry.keys = lists.shared(keys)
  entry.data = values.join(SEPARATOR) // one flat string, where + would leave a rope
}

/** What a save past its deadline throws: it wrote nothing. */
export function pastDeadline(id: string): StoreError {
  return new StoreError(`MemoryStore: save of ${id} is past its deadline; nothing was written`, {
    code: 'ETIMEDOUT',
  })
}

/** Removes the keys whose own lifetime has ended at `now`, with their entries. */
export function dropExpiredKeys(entry: Entry, now: number, lists: KeyLists): void {
  const gone = expiredKeys(entry.keyExpires, now)
  if (gone.length === 0) return
  const data = unpack(entry)
  const keyExpires = { ...entry.keyExpires }
  for (const key of gone) {
    delete data[key]
    delete keyExpires[key]
  }
  pack(entry, data, lists)
  entry.keyExpires = hasKeys(keyExpires) ? keyExpires : undefined
}
