/**
 * What a request changed in its session, and how to replay that onto fresher data.
 *
 * Change detection compares each top-level key's JSON text with the text it was loaded as, so
 * nested mutations (`req.session.cart.items.push(x)`) are found without proxies, and only
 * changed keys are written.
 *
 * When a save meets a newer version, this request's changes are replayed at path level onto
 * the stored record: two requests that change different keys, or different paths inside one
 * key, both survive; the same path ends with the later write. An array that only grew is
 * replayed as an append, so concurrent `push`es all land; any other array change replaces it.
 */
import { isPlainObject, defineKey } from './util.js'

/** A key's value cannot be written as JSON. Status 500: a bug in the app, not in the client. */
export class SessionDataError extends Error {
  override readonly name = 'SessionDataError'
  readonly status = 500
  readonly statusCode = 500
  readonly expose = false
  readonly code: string
  constructor(message: string, options: { cause?: unknown; code?: string } = {}) {
    super(message, { cause: options.cause })
    this.code = options.code ?? 'ESESSIONDATA'
  }
}

/** A session's own `cookie` (an own key under the express-session drop-in) is settings, not data */
const SESSION_COOKIE = 'cookie'

export interface DataDiff {
  /** Changed or added keys, as JSON text. */
  set: Record<string, string>
  /** Keys present at load and gone now. */
  unset: string[]
  /** Every key's JSON text now: the baseline after a successful save. */
  texts: Record<string, string>
  /** Characters of JSON across all keys, for the size limit. */
  size: number
  changed: boolean
}

/**
 * Compares the own enumerable keys of `data` with the JSON texts they were loaded as.
 * A value that JSON drops (undefined, a function) counts as deleted.
 *
 * @example
 * ```ts
 * diffData({ cart: [1, 2], visits: 3 }, { cart: '[1]', visits: '3', gone: 'true' })
 * // { set: { cart: '[1,2]' }, unset: ['gone'], changed: true, ... }
 * ```
 */
export function diffData(data: object, baseline: Readonly<Record<string, string>>): DataDiff {
  const values = data as Record<string, unknown>
  const keys = Object.keys(data)
  // Most requests change nothing: compare first, and allocate only once a change shows up.
  let size = 0
  let matched = 0
  let i = 0
  for (; i < keys.length; i++) {
    const key = keys[i]!
    if (key === SESSION_COOKIE) continue
    const text = stringify(key, values[key])
    if (text === undefined) {
      if (Object.hasOwn(baseline, key)) break
      continue
    }
    if (baseline[key] !== text) break
    size += key.length + text.length
    matched++
  }
  if (i === keys.length && matched === Object.keys(baseline).length) {
    return { set: {}, unset: [], texts: baseline as Record<string, string>, size, changed: false }
  }

  const set: Record<string, string> = {}
  const texts: Record<string, string> = {}
  for (let j = 0; j < i; j++) {
    const key = keys[j]!
    if (Object.hasOwn(baseline, key)) texts[key] = baseline[key]! // equal, as compared above
  }
  for (; i < keys.length; i++) {
    const key = keys[i]!
    if (key === SESSION_COOKIE) continue
    const text = stringify(key, values[key])
    if (text === undefined) continue
    texts[key] = text
    size += key.length + text.length
    if (baseline[key] !== text) set[key] = text
  }
  const unset: string[] = []
  for (const key of Object.keys(baseline)) if (!Object.hasOwn(texts, key)) unset.push(key)
  return { set, unset, texts, size, changed: true }
}

/**
 * The characters of JSON across all keys if nothing changed since `baseline`, or -1 at the
 * first change. Allocates nothing: most requests change nothing.
 *
 * @example
 * ```ts
 * unchangedSize({ visits: 3 }, { visits: '3' }) // 9
 * unchangedSize({ visits: 4 }, { visits: '3' }) // -1
 * ```
 */
export function unchangedSize(data: object, baseline: Readonly<Record<string, string>>): number {
  const values = data as Record<string, unknown>
  let size = 0
  let matched = 0
  for (const key in values) {
    if (!Object.hasOwn(values, key) || key === SESSION_COOKIE) continue
    const text = stringify(key, values[key])
    if (text === undefined) {
      if (Object.hasOwn(baseline, key)) return -1
      continue
    }
    if (baseline[key] !== text) return -1
    size += key.length + text.length
    matched++
  }
  let count = 0
  for (const key in baseline) if (Object.hasOwn(baseline, key)) count++
  return matched === count ? size : -1
}

/**
 * {@link unchangedSize} and {@link diffData} in one pass: the characters of JSON when nothing
 * changed since `baseline` (allocating nothing), else the diff. No key is stringified twice,
 * which a check followed by a diff would do for every key up to the first change.
 *
 * @example
 * ```ts
 * changesSince({ visits: 3 }, { visits: '3' }) // 9
 * changesSince({ visits: 4 }, { visits: '3' }) // { set: { visits: '4' }, unset: [], ... }
 * ```
 */
export function changesSince(
  data: object,
  baseline: Readonly<Record<string, string>>,
): number | DataDiff {
  const values = data as Record<string, unknown>
  let size = 0
  let matched = 0
  for (const key in values) {
    if (!Object.hasOwn(values, key) || key === SESSION_COOKIE) continue
    const text = stringify(key, values[key])
    if (text === undefined) {
      if (Object.hasOwn(baseline, key)) return diffFrom(values, baseline, key, undefined)
      continue
    }
    if (baseline[key] !== text) return diffFrom(values, baseline, key, text)
    size += key.length + text.length
    matched++
  }
  let count = 0
  for (const key in baseline) if (Object.hasOwn(baseline, key)) count++
  return matched === count ? size : diffFrom(values, baseline, undefined, undefined)
}

/**
 * The diff, knowing that the keys before `first` (all keys, without one) are as in `baseline`
 * and that `first` serializes to `firstText`.
 */
function diffFrom(
  values: Record<string, unknown>,
  baseline: Readonly<Record<string, string>>,
  first: string | undefined,
  firstText: string | undefined,
): DataDiff {
  const set: Record<string, string> = {}
  const texts: Record<string, string> = {}
  let size = 0
  let past = false
  for (const key of Object.keys(values)) {
    if (key === SESSION_COOKIE) continue
    let text: string | undefined
    if (past) {
      text = stringify(key, values[key])
    } else if (key === first) {
      past = true
      text = firstText
    } else {
      // Compared equal already (or dropped by JSON and absent from the baseline).
      if (Object.hasOwn(baseline, key)) {
        text = baseline[key]!
        texts[key] = text
        size += key.length + text.length
      }
      continue
    }
    if (text === undefined) continue
    texts[key] = text
    size += key.length + text.length
    if (baseline[key] !== text) set[key] = text
  }
  const unset: string[] = []
  for (const key of Object.keys(baseline)) if (!Object.hasOwn(texts, key)) unset.push(key)
  return { set, unset, texts, size, changed: true }
}

function stringify(key: string, value: unknown): string | undefined {
  try {
    return JSON.stringify(value)
  } catch (cause) {
    throw new SessionDataError(
      `session key "${key}" cannot be saved as JSON (${(cause as Error).message}). ` +
        'Keep plain data in the session: no BigInt, no cycles.',
      { cause },
    )
  }
}

type Path = readonly string[]

export type PathOp =
  | { kind: 'set'; path: Path; value: unknown }
  /** Makes the path an object unless it already is one (a container this request created). */
  | { kind: 'init'; path: Path }
  | { kind: 'delete'; path: Path }
  | { kind: 'append'; path: Path; items: unknown[]; whole: unknown[] }

/**
 * The path-level operations that turn `before` into `after`.
 *
 * @example
 * ```ts
 * diffValue({ items: ['a'], n: 1 }, { items: ['a', 'b'], n: 1 })
 * // [{ kind: 'append', path: ['items'], items: ['b'], whole: ['a', 'b'] }]
 * ```
 */
export function diffValue(before: unknown, after: unknown, path: Path = []): PathOp[] {
  if (isPlainObject(before) && isPlainObject(after)) {
    const ops: PathOp[] = []
    for (const key of Object.keys(after)) {
      if (!Object.hasOwn(before, key)) ops.push(...diffCreated(after[key], [...path, key]))
      else ops.push(...diffValue(before[key], after[key], [...path, key]))
    }
    for (const key of Object.keys(before)) {
      if (!Object.hasOwn(after, key)) ops.push({ kind: 'delete', path: [...path, key] })
    }
    return ops
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    if (sameJson(before, after)) return []
    if (after.length > before.length && before.every((item, i) => sameJson(item, after[i]))) {
      return [{ kind: 'append', path, items: after.slice(before.length), whole: after }]
    }
    return [{ kind: 'set', path, value: after }]
  }
  return sameJson(before, after) ? [] : [{ kind: 'set', path, value: after }]
}

/**
 * The operations that create `value` where nothing was. A container is merged rather than
 * replaced, so two requests that both create `cart.items` concurrently keep both's items:
 * an object is created if missing and filled key by key, an array is appended to.
 *
 * @example
 * ```ts
 * diffCreated({ items: ['a'] })
 * // [{ kind: 'init', path: [] }, { kind: 'append', path: ['items'], items: ['a'], whole: ['a'] }]
 * ```
 */
export function diffCreated(value: unknown, path: Path = []): PathOp[] {
  if (Array.isArray(value)) return [{ kind: 'append', path, items: value, whole: value }]
  if (!isPlainObject(value)) return [{ kind: 'set', path, value }]
  const ops: PathOp[] = [{ kind: 'init', path }]
  for (const key of Object.keys(value)) ops.push(...diffCreated(value[key], [...path, key]))
  return ops
}

/**
 * Applies operations to `root` in place where it can, and returns the new root.
 *
 * @example
 * ```ts
 * const append = { kind: 'append', path: ['items'], items: ['b'], whole: ['a', 'b'] }
 * applyOps({ items: ['x'] }, [append])
 * // { items: ['x', 'b'] }
 * ```
 */
export function applyOps(root: unknown, ops: readonly PathOp[]): unknown {
  for (const op of ops) root = applyOp(root, op)
  return root
}

function applyOp(root: unknown, op: PathOp): unknown {
  if (op.path.length === 0) {
    if (op.kind === 'delete') return undefined
    if (op.kind === 'init') return isPlainObject(root) ? root : {}
    if (op.kind === 'append') return Array.isArray(root) ? [...root, ...op.items] : op.whole
    return op.value
  }
  if (!isPlainObject(root)) {
    if (op.kind === 'delete') return root // nothing there to delete
    root = {}
  }
  const [key, ...rest] = op.path
  const parent = root as Record<string, unknown>
  const child = applyOp(Object.hasOwn(parent, key!) ? parent[key!] : undefined, {
    ...op,
    path: rest,
  })
  if (child === undefined) delete parent[key!]
  else defineKey(parent, key!, child)
  return parent
}

/**
 * Replays one top-level key: what this request did between `loaded` and `mine`, applied onto
 * `theirs` (the stored text now). Returns the JSON text to write.
 *
 * @example
 * ```ts
 * replayKey('{"a":1}', '{"a":1,"b":2}', '{"a":1,"c":3}') // '{"a":1,"c":3,"b":2}'
 * ```
 */
export function replayKey(
  loaded: string | undefined,
  mine: string,
  theirs: string | undefined,
): string {
  // Deleted there, or untouched there: this request's text stands as it is.
  if (theirs === undefined || theirs === loaded) return mine
  // Created here (and, concurrently, there too): merged as a creation, not a replacement.
  const ops =
    loaded === undefined
      ? diffCreated(JSON.parse(mine))
      : diffValue(JSON.parse(loaded), JSON.parse(mine))
  const merged = applyOps(JSON.parse(theirs), ops)
  return merged === undefined ? mine : JSON.stringify(merged)
}

/**
 * Replays several requests' changes, one after another, onto `theirs` (the stored texts): what
 * {@link replayKey} does per key, but a key that several requests changed stays a parsed object
 * between them and is written out once, and each text a request loaded is parsed once.
 *
 * @example
 * ```ts
 * const replay = new ReplayOnto({ cart: '{"a":1}' })
 * replay.apply({ cart: '{}' }, { cart: '{"b":1}' }, [])
 * replay.apply({ cart: '{}' }, { cart: '{"c":1}' }, [])
 * replay.texts() // { cart: '{"a":1,"b":1,"c":1}' }
 * ```
 */
export class ReplayOnto {
  readonly #texts: Record<string, string> = {}
  /** Keys whose value is held parsed; their entry in #texts is stale until texts(). */
  readonly #live = new Map<string, unknown>()
  /** Parses of texts requests loaded, by text; only read, never changed. */
  readonly #loaded = new Map<string, unknown>()

  constructor(theirs: Readonly<Record<string, string>>) {
    for (const key of Object.keys(theirs)) defineKey(this.#texts, key, theirs[key]!)
  }

  /** One request's changes: `set` and `unset` made against `loaded`. */
  apply(
    loaded: Readonly<Record<string, string>>,
    set: Readonly<Record<string, string>>,
    unset: readonly string[],
  ): void {
    const texts = this.#texts
    for (const key of Object.keys(set)) {
      const mine = set[key]!
      const before = Object.hasOwn(loaded, key) ? loaded[key] : undefined
      const live = this.#live.has(key)
      const theirs = Object.hasOwn(texts, key) ? texts[key] : undefined
      // Deleted there, or untouched there: this request's text stands as it is.
      if (!live && (theirs === undefined || theirs === before)) {
        defineKey(texts, key, mine)
        continue
      }
      const ops =
        before === undefined
          ? diffCreated(JSON.parse(mine))
          : diffValue(this.#parsedLoaded(before), JSON.parse(mine))
      const merged = applyOps(live ? this.#live.get(key) : JSON.parse(theirs!), ops)
      if (merged === undefined) {
        this.#live.delete(key)
        defineKey(texts, key, mine)
      } else {
        this.#live.set(key, merged)
      }
    }
    for (const key of unset) {
      delete texts[key]
      this.#live.delete(key)
    }
  }

  /** Every key's text after the requests applied so far. */
  texts(): Record<string, string> {
    for (const [key, value] of this.#live) defineKey(this.#texts, key, JSON.stringify(value))
    this.#live.clear()
    return this.#texts
  }

  #parsedLoaded(text: string): unknown {
    if (!this.#loaded.has(text)) this.#loaded.set(text, JSON.parse(text))
    return this.#loaded.get(text)
  }
}

function sameJson(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b)
}
