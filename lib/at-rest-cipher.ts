/**
 * Encryption at rest of session values: AES-256-GCM per stored value, with the additional
 * authenticated data binding each value to its session (the id as stored) and its key name,
 * so a value copied into another session or under another key fails to decrypt. The newest
 * key encrypts; every listed key decrypts, so keys rotate without signing anyone out.
 */
import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto'
import { hashSessionId } from './id-hash.js'
import { StoreError } from './store.js'

/** The `encrypt` option of `session()`. */
export interface EncryptOptions {
  /**
   * 32-byte keys, newest first: the first encrypts, all decrypt. Each is a Buffer of 32 bytes,
   * or a string of 64 hex digits or of base64 for 32 bytes. Make one with
   * `crypto.randomBytes(32).toString('base64')`.
   */
  keys: ReadonlyArray<Buffer | string>
}

/** Marks an encrypted value; the version lets the format change later. */
const PREFIX = 'cs1.'
/** What an encrypted value looks like as the JSON text a store holds. */
const ENVELOPE =
  /^"cs1\.([A-Za-z0-9_-]{8})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]{22})"$/

const HOW =
  'Pass encrypt: { keys: [newest, ...older] }, each key 32 bytes: a Buffer, 64 hex digits, ' +
  "or base64 (make one with crypto.randomBytes(32).toString('base64'))"

/**
 * The keys of the `encrypt` option, checked: a TypeError that says what to pass otherwise.
 *
 * @example
 * ```ts
 * resolveEncryptKeys({ keys: [randomBytes(32)] }) // [<Buffer ...>]
 * ```
 */
export function resolveEncryptKeys(value: unknown): Buffer[] | undefined {
  if (value === undefined) return undefined
  const keys = (value as EncryptOptions | null)?.keys
  if (typeof value !== 'object' || value === null || !Array.isArray(keys) || keys.length === 0)
    throw new TypeError(`session(): encrypt needs a non-empty keys array. ${HOW}`)
  const extra = Object.keys(value).filter((name) => name !== 'keys')
  if (extra.length > 0)
    throw new TypeError(`session(): encrypt has unknown option ${extra.join(', ')}. ${HOW}`)
  return keys.map((key: unknown, i) => {
    const bytes = keyBytes(key)
    if (bytes?.length !== 32)
      throw new TypeError(
        `session(): encrypt.keys[${i}] is not a 32-byte key (got ${describe(key, bytes)}). ${HOW}`,
      )
    return bytes
  })
}

function keyBytes(key: unknown): Buffer | undefined {
  if (Buffer.isBuffer(key)) return key
  if (typeof key !== 'string') return undefined
  if (/^[0-9a-fA-F]{64}$/.test(key)) return Buffer.from(key, 'hex')
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(key)) return Buffer.from(key, 'base64')
  return undefined
}

function describe(key: unknown, bytes: Buffer | undefined): string {
  if (bytes) return `${bytes.length} bytes`
  if (typeof key === 'string')
    return `a string of ${key.length} characters that is not hex or base64 of 32 bytes`
  return key === null ? 'null' : typeof key
}

/**
 * Encrypts and decrypts the values of stored sessions.
 *
 * @example
 * ```ts
 * const cipher = new ValueCipher([randomBytes(32)])
 * const text = cipher.seal('K6x…', 'cart', '["tea"]') // '"cs1.…"'
 * cipher.open('K6x…', 'cart', text, 'K6x…').text      // '["tea"]'
 * ```
 */
export class ValueCipher {
  readonly #keys: Buffer[]
  /** A short public name of each key, stored with each value to pick the key that opens it. */
  readonly #ids: string[]
  /**
   * Values this process sealed or opened lately, by their ciphertext (unique: each has its own
   * random IV), so a session read again costs a lookup, not an AES-GCM pass per value. Holds
   * no more than the process already keeps of recent sessions; a hit must match the session
   * and key name too, so a copied value still fails.
   */
  readonly #opened = new Map<string, Opened & { storedId: string; name: string }>()
  #chars = 0

  constructor(keys: Buffer[]) {
    this.#keys = keys
    this.#ids = keys.map((key) => hashSessionId('concord-session key id', key).slice(0, 8))
  }

  /** `text` (JSON) encrypted under the newest key, as JSON text (a string) a store can hold. */
  seal(storedId: string, name: string, text: string): string {
    const iv = nextIv()
    const cipher = createCipheriv('aes-256-gcm', this.#keys[0]!, iv)
    cipher.setAAD(aad(storedId, name))
    const body = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()])
    const tag = cipher.getAuthTag()
    const parts = [iv, body, tag].map((bytes) => bytes.toString('base64url'))
    const sealed = `"${PREFIX}${this.#ids[0]}.${parts.join('.')}"`
    this.#remember(sealed, { storedId, name, text, stale: false })
    return sealed
  }

  /**
   * The JSON text a stored value holds. `stale` is true for a value written under an older key
   * or before encryption was on: the next save encrypts it anew. A value that does not decrypt
   * is a StoreError naming the session by `shownId`, its keyed hash.
   */
  open(storedId: string, name: string, stored: string, shownId: string): Opened {
    if (!stored.startsWith(`"${PREFIX}`)) return { text: stored, stale: true }
    const known = this.#opened.get(stored)
    if (known !== undefined && known.storedId === storedId && known.name === name) return known
    const parts = ENVELOPE.exec(stored)
    const index = parts ? this.#ids.indexOf(parts[1]!) : -1
    if (!parts || index === -1)
      throw unreadable(
        shownId,
        name,
        parts ? 'it was encrypted with a key that is not in encrypt.keys' : 'it is malformed',
      )
    try {
      const decipher = createDecipheriv(
        'aes-256-gcm',
        this.#keys[index]!,
        Buffer.from(parts[2]!, 'base64url'),
      )
      decipher.setAAD(aad(storedId, name))
      decipher.setAuthTag(Buffer.from(parts[4]!, 'base64url'))
      const body = Buffer.from(parts[3]!, 'base64url')
      const text = Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8')
      const opened = { storedId, name, text, stale: index !== 0 }
      this.#remember(stored, opened)
      return opened
    } catch (err) {
      throw unreadable(
        shownId,
        name,
        'it fails authentication (changed, or copied from another session or key)',
        err,
      )
    }
  }

  #remember(stored: string, opened: Opened & { storedId: string; name: string }): void {
    const size = stored.length + opened.text.length
    if (size > MAX_OPENED_CHARS / 100) return // a large value is not worth the memory
    this.#opened.set(stored, opened)
    this.#chars += size
    while (this.#opened.size > MAX_OPENED || this.#chars > MAX_OPENED_CHARS) {
      const [oldest, entry] = this.#opened.entries().next().value!
      this.#opened.delete(oldest)
      this.#chars -= oldest.length + entry.text.length
    }
  }
}

/** IVs come from a pool the CSPRNG fills in one call: a call per IV costs as much as the AES. */
const IV_POOL = Buffer.alloc(12 * 512)
let ivAt = IV_POOL.length

function nextIv(): Buffer {
  if (ivAt === IV_POOL.length) {
    randomFillSync(IV_POOL)
    ivAt = 0
  }
  ivAt += 12
  return IV_POOL.subarray(ivAt - 12, ivAt)
}

/** Bounds of the cache of opened values: entries, and characters of ciphertext and text. */
const MAX_OPENED = 10_000
const MAX_OPENED_CHARS = 16_000_000

export interface Opened {
  text: string
  stale: boolean
}

function aad(storedId: string, name: string): Buffer {
  // Both parts are length-prefixed, so no pair of (id, name) can spell another pair.
  return Buffer.from(`${storedId.length}:${storedId}${name.length}:${name}`, 'utf8')
}

function unreadable(shownId: string, name: string, why: string, cause?: unknown): StoreError {
  return new StoreError(
    `session ${shownId} (keyed hash): the stored value of "${name}" cannot be decrypted: ${why}. ` +
      'Other sessions are not affected; destroy this one, or add the key it was written ' +
      'with to encrypt.keys',
    { cause, code: 'EDECRYPT' },
  )
}
