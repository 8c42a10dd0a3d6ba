/**
 * The shop's audit log: one line per session lifecycle event. Ids are the keyed hashes the
 * middleware hands out, never the cookie's value, so the log cannot be replayed as a cookie.
 */
import type { SessionEvent } from '../entries/index.js'

/**
 * One event as one line: its type, then its fields as `key=value`.
 *
 * @example
 * ```ts
 * auditLine({ type: 'destroyed', sessionId: 'K6x…', userId: 'ada', at: 0 })
 * // 'session destroyed at=1970-01-01T00:00:00.000Z sessionId=K6x… userId=ada'
 * ```
 */
export function auditLine(event: SessionEvent): string {
  const { type, at, ...fields } = event
  const rest = Object.entries(fields).map(([key, value]) => `${key}=${String(value)}`)
  return [`session ${type}`, `at=${new Date(at).toISOString()}`, ...rest].join(' ')
}
