/**
 * Where a store keeps a session the middleware saved: under the keyed hash of its id, keyed
 * from the first secret by default (see lib/at-rest-options.ts).
 */
import { deriveIdHashKey } from '../../lib/at-rest-options.js'
import { hashSessionId } from '../../lib/id-hash.js'

/** The stored id of the session `id` under a middleware with this first `secret`. */
export function storedId(id: string, secret: string): string {
  return hashSessionId(id, deriveIdHashKey(secret))
}
