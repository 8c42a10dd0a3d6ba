/**
 * Rejecting option names nobody reads. A misspelt option (`httponly`, `maxage`, `ttl` where the
 * store calls it something else) would otherwise be ignored without a word, and the setting the
 * user meant silently not applied. Shared by the core and the stores; imports nothing.
 */

/**
 * Throws a TypeError naming the first key of `options` that is not in `known`, with the nearest
 * known name when one is close, and the full list. `hints` gives a tailored message for names
 * that other libraries use (connect-redis's `ttl`, say).
 *
 * @example
 * ```ts
 * rejectUnknownKeys('session cookie "sid"', { httponly: false }, ['httpOnly', 'secure'])
 * // TypeError: session cookie "sid": unknown option "httponly" (did you mean "httpOnly"?).
 * //   Known options: httpOnly, secure
 * ```
 */
export function rejectUnknownKeys(
  where: string,
  options: object,
  known: readonly string[],
  hints: Readonly<Record<string, string>> = {},
): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue
    // Spread-in leftovers (`{ ...defaults, domain: undefined }`) set nothing.
    if ((options as Record<string, unknown>)[key] === undefined) continue
    const hint = Object.hasOwn(hints, key) ? `: ${hints[key]}` : suggestion(key, known)
    throw new TypeError(
      `${where}: unknown option "${key}"${hint}. Known options: ${known.join(', ')}`,
    )
  }
}

/** ` (did you mean "x"?)` for a differently-cased name or one within two edits, else ''. */
function suggestion(key: string, known: readonly string[]): string {
  const lower = key.toLowerCase()
  let best: string | undefined
  let bestDistance = 3
  for (const name of known) {
    const distance = name.toLowerCase() === lower ? 0 : editDistance(lower, name.toLowerCase())
    if (distance < bestDistance) {
      best = name
      bestDistance = distance
    }
  }
  return best === undefined ? '' : ` (did you mean "${best}"?)`
}

/** Levenshtein distance; option names are short, so the quadratic table costs nothing. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      )
    }
    previous = current
  }
  return previous[b.length]!
}

/**
 * True for a finite number above zero: a duration in ms, a size, a count.
 *
 * @example
 * ```ts
 * isPositiveNumber(2000) // true
 * isPositiveNumber('2s') // false
 * ```
 */
export function isPositiveNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0
}

/**
 * Throws a TypeError unless `value` is a positive number, naming the option and its unit.
 *
 * @example
 * ```ts
 * requirePositive('FileStore', 'lockTimeout', options.lockTimeout, 'ms')
 * // TypeError: FileStore: lockTimeout must be a positive number of ms, got 0
 * ```
 */
export function requirePositive(where: string, name: string, value: unknown, unit: string): void {
  if (!isPositiveNumber(value))
    throw new TypeError(
      `${where}: ${name} must be a positive number of ${unit}, got ${shown(value)}`,
    )
}

/** A value as a message shows it: text quoted, so `"2s"` reads as the string it is. */
function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value)
}
