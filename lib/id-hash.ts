import { createHmac } from 'node:crypto'

/**
 * The keyed hash of a session id: what stores key a session by, and what events and logs show
 * instead of the id, so a store dump or a log line cannot be replayed as a cookie (see OWASP's
 * Session Management Cheat Sheet, "Session ID logging").
 *
 * @example
 * ```ts
 * hashSessionId('abc', 'key') // 'K6x...' (43 base64url characters)
 * ```
 */
export function hashSessionId(id: string, key: string | Buffer): string {
  return createHmac('sha256', key).update(id).digest('base64url')
}
