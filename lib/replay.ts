/**
 * Replaying a request's changes onto fresher data.
 *
 * When a save meets a newer version, this request's changes are replayed at path level onto
 * the stored record: two requests that change different keys, or different paths inside one
 * key, both survive; the same path ends with the later write. An array that only grew is
 * replayed as an append, so concurrent `push`es all land; any other array change replaces it.
 */
import { isPlainObject, defineKey } from './util.js'

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
