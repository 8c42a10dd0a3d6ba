/**
 * When a session ends: the idle rule (now + idle timeout) capped by the absolute rule
 * (created + absolute timeout). One home for the arithmetic the core and every store share.
 * See OWASP's Session Management Cheat Sheet, "Session Expiration":
 * https://cheatsheetseries.owasp.org/cheatsheets/Session_Management_Cheat_Sheet.html
 */

/**
 * Epoch ms a session ends however active it is, or `Infinity` without an absolute timeout.
 *
 * @example
 * ```ts
 * absoluteEnd(createdAt, 8 * 3_600_000) // createdAt + 8 h
 * absoluteEnd(createdAt, undefined) // Infinity
 * ```
 */
export function absoluteEnd(createdAt: number, absoluteTimeout: number | undefined): number {
  return absoluteTimeout === undefined ? Infinity : createdAt + absoluteTimeout
}

/**
 * Epoch ms a session ends if no request comes after `now`: `now + idleTimeout`, capped by
 * `createdAt + absoluteTimeout`.
 *
 * @example
 * ```ts
 * const expiresAt = idleExpiry(Date.now(), 30 * 60_000, record.createdAt, 8 * 3_600_000)
 * ```
 */
export function idleExpiry(
  now: number,
  idleTimeout: number,
  createdAt: number,
  absoluteTimeout: number | undefined,
): number {
  const idle = now + idleTimeout
  return absoluteTimeout === undefined ? idle : Math.min(idle, createdAt + absoluteTimeout)
}

/**
 * The idle expiry a touch at `touchAt` gives `record`, capped by the absolute timeout.
 * Stores that compute the touch in their own process call this; Redis does the same in Lua.
 *
 * @example
 * ```ts
 * record.expiresAt = touchedExpiry(record, Date.now(), options.absoluteTimeout)
 * ```
 */
export function touchedExpiry(
  record: { readonly createdAt: number; readonly idleTimeout: number },
  touchAt: number,
  absoluteTimeout?: number,
): number {
  return idleExpiry(touchAt, record.idleTimeout, record.createdAt, absoluteTimeout)
}
