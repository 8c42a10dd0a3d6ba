/**
 * What a request changed in its session, and how to replay that onto fresher data.
 *
 * Change detection compares each top-level key's JSON text with the text it was loaded as, so
 * nested mutations (`req.session.cart.items.push(x)`) are found without proxies, and only
 * changed keys are written. The replay onto fresher data is in replay.ts.
 */
export { applyOps, diffCreated, diffValue, replayKey, ReplayOnto, type PathOp } from './replay.js'

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
