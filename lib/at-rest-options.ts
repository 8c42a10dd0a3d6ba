/**
 * The options of protection at rest, resolved once at `session()` time: whether the store keys
 * sessions by the keyed hash of their id, under which keys, and the encryption keys.
 */
import { resolveEncryptKeys } from './at-rest-cipher.js'
import type { Secret } from './cookie.js'
import { DEFAULT_ID_HASH_KEY } from './events.js'
import { hashSessionId } from './id-hash.js'
import type { Store } from './store.js'

/** Protection at rest, as resolved. */
export interface AtRestConfig {
  /** Whether the store keys each session by the keyed hash of its id. */
  hashIds: boolean
  /** The key of that hash (and of the ids in events and tracing). */
  idHashKey: string | Buffer
  /**
   * Keys sessions may still be stored under from before a secret rotation, newest first. A
   * session found under one moves to `idHashKey` at once.
   */
  olderIdHashKeys: ReadonlyArray<string | Buffer>
  /** AES-256-GCM keys, newest first; undefined without encryption. */
  encryptKeys: Buffer[] | undefined
}

/**
 * A store that keeps ids as it is given them and should not be handed hashes by default:
 * an adapted express-session store, whose other readers (the app, other express-session
 * apps) look sessions up by id.
 *
 * @example
 * ```ts
 * class MyAdapter implements Store { readonly storesRawIds = true; ... }
 * ```
 */
export interface StoresRawIds {
  readonly storesRawIds: true
}

/**
 * The key the id hash is keyed with when `idHashKey` is not given: derived from a cookie
 * secret, so that someone who sees the store but not the secret cannot even check a guessed
 * id against it.
 *
 * @example
 * ```ts
 * deriveIdHashKey('keyboard cat') // 43 base64url characters
 * ```
 */
export function deriveIdHashKey(secret: Secret): string {
  return hashSessionId('concord-session id hash key', secret)
}

/**
 * Resolves `hashIds`, `idHashKey` and `encrypt`. Without `idHashKey`, the key derives from the
 * first secret, and the other secrets give the keys to look under after a rotation; without
 * a secret at setup (cookie-parser's), it is the public default.
 *
 * @example
 * ```ts
 * resolveAtRest({}, ['s3cret'], new MemoryStore()).hashIds // true
 * ```
 */
export function resolveAtRest(
  options: { hashIds?: unknown; idHashKey?: unknown; encrypt?: unknown },
  secrets: readonly Secret[] | null,
  store: Store,
): AtRestConfig {
  const { hashIds } = options
  if (hashIds !== undefined && typeof hashIds !== 'boolean')
    throw new TypeError(`session(): hashIds must be true or false, got ${JSON.stringify(hashIds)}`)
  const raw = (store as Partial<StoresRawIds>).storesRawIds === true
  const explicit = resolveIdHashKey(options.idHashKey)
  const derived = explicit === undefined && secrets ? secrets.map(deriveIdHashKey) : []
  return {
    hashIds: hashIds ?? !raw,
    idHashKey: explicit ?? derived[0] ?? DEFAULT_ID_HASH_KEY,
    olderIdHashKeys: derived.slice(1),
    encryptKeys: resolveEncryptKeys(options.encrypt),
  }
}

function resolveIdHashKey(key: unknown): string | Buffer | undefined {
  if (key === undefined) return undefined
  if (typeof key === 'string' || (Buffer.isBuffer(key) && key.length > 0)) return key
  throw new TypeError(
    `session(): idHashKey must be a string or a non-empty Buffer (the key of the id hash), got ${
      Buffer.isBuffer(key) ? 'an empty Buffer' : JSON.stringify(key)
    }`,
  )
}
