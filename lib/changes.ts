/**
 * What a request changed in its session, and how to replay that onto fresher data.
 *
 * Change detection compares each top-level key's JSON text with the text it was loaded as, so
 * nested mutations (`req.session.cart.items.push(x)`) are found without proxies, and only
 * changed keys are written. The replay onto fresher data is in replay.ts.
 */
import { NO_KEYS } from './session-state.js'

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
 * Compares the own enumerable keys of `data` with the JSON texts they were loaded as, in one
 * pass: the characters of JSON when nothing changed since `baseline` (allocating nothing: most
 * requests change nothing), else the diff. A value that JSON drops (undefined, a function)
 * counts as deleted. No key is stringified twice, which a check followed by a diff would do for
 * every key up to the first change.
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
  for (const key in values) {
    if (!Object.hasOwn(values, key) || key === SESSION_COOKIE) continue
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
  let unset = NO_KEYS // most saves delete nothing
  for (const key in baseline) {
    if (!Object.hasOwn(baseline, key) || Object.hasOwn(texts, key)) continue
    if (unset === NO_KEYS) unset = []
    unset.push(key)
  }
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
