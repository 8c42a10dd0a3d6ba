/**
 * Whether a request arrived over HTTPS, by express-session's rule (its `issecure()`), for
 * `cookie.secure: 'auto'`, `sameSite: 'auto'` and the `proxy` option.
 */
import type { IncomingMessage } from 'node:http'

/**
 * A TLS socket is secure. Otherwise `proxy: false` says no; `proxy: true` trusts the first
 * `X-Forwarded-Proto`; unset defers to Express's `req.secure` (its `trust proxy` setting).
 *
 * @example
 * ```ts
 * isSecureRequest(req, true) // true behind a proxy that sent X-Forwarded-Proto: https
 * ```
 */
export function isSecureRequest(req: IncomingMessage, proxy: unknown): boolean {
  if ((req.socket as { encrypted?: boolean } | undefined)?.encrypted) return true
  if (proxy === false) return false
  if (proxy !== true) return (req as { secure?: boolean }).secure === true
  const header = req.headers['x-forwarded-proto']
  const value = Array.isArray(header) ? (header[0] ?? '') : (header ?? '')
  return value.split(',')[0]!.trim().toLowerCase() === 'https'
}
