/**
 * Turning a driver's failure into the StoreError (503) the middleware fails closed with. Shared
 * by the stores and the express-session store adapter; imports only the contract.
 */
import { StoreError } from './store.js'

/**
 * True when `err` carries this `code` (Node's errno codes such as `'ENOENT'`, driver codes).
 *
 * @example
 * ```ts
 * if (isCode(err, 'ENOENT')) return null
 * ```
 */
export function isCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code
}

/**
 * The words of any thrown value: an Error's message, a list's items joined, else its text.
 *
 * @example
 * ```ts
 * errorMessage(new Error('ECONNREFUSED')) // 'ECONNREFUSED'
 * errorMessage(['a', 'b'])               // 'a; b'
 * ```
 */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message
  if (Array.isArray(err)) return err.map(String).join('; ')
  return String(err)
}

/**
 * `err` as a StoreError: one passes through as it is; anything else becomes a StoreError with
 * `err` as its cause and the message `describe` makes of the failure's words.
 *
 * @example
 * ```ts
 * throw toStoreError(err, (why) => `RedisStore: GET ${key} failed: ${why}`, 'EREDIS')
 * ```
 */
export function toStoreError(
  err: unknown,
  describe: (message: string) => string,
  code?: string,
): StoreError {
  if (err instanceof StoreError) return err
  return new StoreError(
    describe(errorMessage(err)),
    code === undefined ? { cause: err } : { cause: err, code },
  )
}

/**
 * The StoreError for a stored session the store cannot read (code `'ECORRUPT'`).
 *
 * @example
 * ```ts
 * throw corruptSession('RedisStore', key, 'field @version is not a number')
 * ```
 */
export function corruptSession(
  store: string,
  id: string,
  detail: string,
  cause?: unknown,
): StoreError {
  return new StoreError(`${store}: session ${id} holds data it cannot read: ${detail}`, {
    code: 'ECORRUPT',
    cause,
  })
}
