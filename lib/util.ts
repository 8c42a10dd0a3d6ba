/** Small neutral helpers the core and the stores share. */

/**
 * Resolves after `ms` milliseconds. Only for backoff between retries, never to wait for an event.
 *
 * @example
 * ```ts
 * await sleep(Math.random() * 100) // jittered backoff
 * ```
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Whether `value` is an object as JSON has them: not null, not an array. What the change
 * tracker merges key by key, and what a stored JSON document must be.
 *
 * @example
 * ```ts
 * isPlainObject({ a: 1 }) // true
 * isPlainObject([1]) // false
 * ```
 */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Copies a value to an object without invoking setters, so "__proto__" stays an own key. */
export function defineKey(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(target, key, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    })
  else target[key] = value
}
