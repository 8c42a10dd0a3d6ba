/**
 * Calling one method of an express-session callback store as a promise. Third-party stores
 * call back synchronously, asynchronously, twice, or never, and some also return a promise;
 * this settles exactly once, on the first of: the callback, a synchronous throw, a rejected
 * returned promise, or the timeout.
 */
import createDebug from 'debug'
import { StoreError } from '../store.js'

const debug = createDebug('concord-session:compat')

/**
 * A Node-style callback with a value, as express-session stores call them; `any` as in
 * @types/express-session, so existing stores type-check unchanged. The Session methods' own
 * callback is the core's `Callback`.
 */
export type NodeCallback<T = any> = (err?: any, value?: T) => void

/**
 * Calls `target[method](...args, callback)` and resolves with the callback's value.
 * Rejects with the store's own error as given (the caller decides what it means, e.g. ENOENT),
 * or with a StoreError `ETIMEDOUT` when nothing called back within `timeoutMs`.
 *
 * @example
 * ```ts
 * const sess = await callLegacy(store, 'get', [sid], 5_000)
 * ```
 */
export function callLegacy<T>(
  target: object,
  method: string,
  args: readonly unknown[],
  timeoutMs: number,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false
    const settle = (err: unknown, value?: T): void => {
      if (settled) {
        // A store bug (express-session #477-style double callbacks): the first answer stands.
        debug('store %s called back again after settling; ignored', method)
        return
      }
      settled = true
      clearTimeout(timer)
      if (err !== undefined && err !== null) reject(err)
      else resolve(value as T)
    }
    const timer = setTimeout(() => {
      settle(
        new StoreError(`session store ${method}() did not call back within ${timeoutMs} ms`, {
          code: 'ETIMEDOUT',
        }),
      )
    }, timeoutMs)
    // The timer must not keep a process alive that has nothing else to do.
    timer.unref()

    try {
      const fn = (target as Record<string, unknown>)[method] as (...a: unknown[]) => unknown
      const returned = fn.call(target, ...args, (err: unknown, value: T) => settle(err, value))
      // Promise-returning stores (connect-redis) also call back; only a rejection matters here.
      if (isThenable(returned))
        returned.then(undefined, (err: unknown) =>
          settle(err ?? new Error(`store ${method}() rejected`)),
        )
    } catch (err) {
      settle(err ?? new Error(`store ${method}() threw`))
    }
  })
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  )
}
