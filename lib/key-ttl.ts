/**
 * A lifetime for one session key: a one-time code, a flash message, a CSRF nonce. A function
 * over the session rather than a method on it, so no name can collide with your session keys.
 */
import type { Session } from './session.js'
import { stateOf } from './session-state.js'
import { defineKey } from './util.js'

/** A lifetime in ms, or a string such as `'90s'`, `'5m'`, `'2h'`, `'1d'` (also `'500ms'`). */
export type Duration = number | string

/** Sets and reads the lifetimes of one session's keys. See {@link keyTtl}. */
export interface KeyTtl {
  /**
   * Sets `key` to `value` with a lifetime of its own: the first load after `ttl` has passed
   * finds the key gone, on every store. Setting the key this way again gives it a new lifetime.
   */
  set(key: string, value: unknown, ttl: Duration): void
  /** Epoch ms at which `key` expires, or `undefined` when it has no lifetime of its own. */
  expiresAt(key: string): number | undefined
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/

/**
 * A duration in ms from a number of ms or a string such as `'5m'`; a TypeError that says what
 * to write for anything else (zero, negative, not finite, an unknown unit).
 *
 * @example
 * ```ts
 * parseDuration('5m') // 300000
 * parseDuration(1500) // 1500
 * ```
 */
export function parseDuration(ttl: Duration, what = 'ttl'): number {
  let ms = NaN
  if (typeof ttl === 'number') ms = ttl
  else if (typeof ttl === 'string') {
    const match = DURATION.exec(ttl.trim())
    if (match) ms = Number(match[1]) * UNITS[match[2]!]!
  }
  if (!Number.isFinite(ms) || ms <= 0)
    throw new TypeError(
      `${what} must be a positive number of ms or a string such as '90s', '5m', '2h' or '1d', ` +
        `got ${typeof ttl === 'string' ? `'${ttl}'` : String(ttl)}`,
    )
  return ms
}

/**
 * Gives session keys lifetimes of their own. A key set through it is gone at the first load
 * after its lifetime ends, on every store, while the session lives on.
 *
 * Rules: writing the key again through `keyTtl(...).set` gives it a new lifetime; assigning it
 * directly (`req.session.otp = …`) or changing its value in place makes it a plain key with no
 * lifetime; deleting it removes its lifetime. A lifetime never outlasts its session.
 *
 * @example
 * ```ts
 * import { keyTtl } from 'concord-session'
 * keyTtl(req.session).set('otp', code, '5m')      // gone 5 minutes from now
 * keyTtl(req.session).set('flash', 'Saved', 30_000)
 * keyTtl(req.session).expiresAt('otp')            // epoch ms, or undefined
 * ```
 */
export function keyTtl(session: Session): KeyTtl {
  const state = stateOf(session)
  return {
    set(key, value, ttl) {
      if (typeof key !== 'string' || key === '' || key === 'cookie' || key === '__proto__')
        throw new TypeError(
          `keyTtl: key must be a non-empty string other than 'cookie' and '__proto__', ` +
            `got ${JSON.stringify(key)}`,
        )
      const ms = parseDuration(ttl, `keyTtl: the lifetime of "${key}"`)
      if (value === undefined || typeof value === 'function' || typeof value === 'symbol')
        throw new TypeError(
          `keyTtl: the value of "${key}" must be JSON data; to remove the key, delete it`,
        )
      defineKey(session as unknown as Record<string, unknown>, key, value)
      const sets = (state.ttlSets ??= {})
      // Whole ms: every store keeps the time exactly (Redis's JSON keeps 14 digits).
      defineKey(sets, key, Math.ceil(Date.now() + ms))
    },
    expiresAt(key) {
      const sets = state.ttlSets
      if (sets !== undefined && Object.hasOwn(sets, key)) return sets[key]
      return Object.hasOwn(state.keyExpires, key) ? state.keyExpires[key] : undefined
    },
  }
}
