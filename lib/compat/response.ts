/**
 * express-session's response behaviour, on top of the core's `res.end` hook:
 * - An app that put something other than a string in `req.sessionID` gets neither a save nor a
 *   cookie at the end of the request ("cannot set cookie without a session ID").
 * - After `res.end()` the app's view is that the head went out: setting a header throws
 *   ERR_HTTP_HEADERS_SENT, as it would in plain Node and under express-session (which writes
 *   the head before it saves). The core writes it once the save is done, and may still add the
 *   session cookie then.
 * - A store error at the end of the request still sends the response the app built, and then
 *   reaches `next(err)` (express-session defers it the same way). The main entry answers 503
 *   instead, because the response claims a change that was not saved.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

type Next = (err?: unknown) => void
type Method = (...args: unknown[]) => unknown

const FROZEN = { setHeader: 'set', appendHeader: 'append', removeHeader: 'remove' } as const

/** What the drop-in's middleware calls when the core reports an error after `next()`. */
export interface DropInResponse {
  /**
   * Sends the app's response and hands `err` on to `next`; false, doing nothing, once the
   * wrappers have let go of the response (the caller then hands `err` on).
   */
  lateError(err: unknown): boolean
}

/** What the drop-in's wrappers work on until the response is done. */
interface Hooked {
  readonly req: IncomingMessage & { sessionID?: unknown }
  readonly res: ServerResponse
  readonly next: Next
}

/**
 * Wraps `res.end` and `res.writeHead` outside the core's wrappers (call it after the core has
 * hooked the response). Once the head is out and end() has run, the wrappers only pass calls on
 * and hold nothing of the request: as with the core's hook, V8 may keep them alive until a full
 * collection.
 *
 * @example
 * ```ts
 * const plain = { end: res.end, writeHead: res.writeHead } // before the core hooks them
 * // … the core hooks the response, then:
 * const response = hookDropInResponse(req, res, next, plain)
 * // later, when the core calls next(err) a second time:
 * if (!response.lateError(err)) setImmediate(next, err)
 * ```
 */
export function hookDropInResponse(
  req: IncomingMessage & { sessionID?: unknown },
  res: ServerResponse,
  next: Next,
  plain: Pick<ServerResponse, 'end' | 'writeHead'>,
): DropInResponse {
  // No inner function may mention req, res or next: V8 gives all of them one closure context,
  // and the wrappers would keep the request through it.
  const coreEnd = res.end as unknown as Method
  const coreWriteHead = res.writeHead as unknown as Method
  let hooked: Hooked | undefined = { req, res, next }
  let endArgs: unknown[] | undefined
  let failed = false
  const saved = new Map<string, PropertyDescriptor | undefined>()

  function freeze(target: ServerResponse): void {
    for (const [name, verb] of Object.entries(FROZEN)) {
      if (typeof (target as unknown as Record<string, unknown>)[name] !== 'function') continue
      saved.set(name, Object.getOwnPropertyDescriptor(target, name))
      Object.defineProperty(target, name, {
        configurable: true,
        writable: true,
        value: () => headersSent(verb),
      })
    }
  }

  function thaw(target: ServerResponse): void {
    for (const [name, descriptor] of saved) {
      if (descriptor) Object.defineProperty(target, name, descriptor)
      else delete (target as unknown as Record<string, unknown>)[name]
    }
    saved.clear()
  }

  function release(): void {
    hooked = undefined
    endArgs = undefined
  }

  const dropInEnd = function (this: ServerResponse, ...args: unknown[]) {
    if (hooked === undefined || endArgs !== undefined) return coreEnd.apply(this, args)
    const { req, res } = hooked
    endArgs = args
    if (typeof req.sessionID !== 'string') {
      // As express-session: no save, no touch, no cookie. The core's hooks are left out.
      res.end = plain.end
      res.writeHead = plain.writeHead
      release()
      return (plain.end as unknown as Method).apply(this, args)
    }
    const result = coreEnd.apply(this, args)
    // Until the save is done the core holds the head back, or (the head out already) the end.
    if (res.writableEnded) release()
    else if (!failed && !res.headersSent) freeze(res)
    return result
  } as typeof res.end
  res.end = dropInEnd

  res.writeHead = function dropInWriteHead(this: ServerResponse, ...args: unknown[]) {
    if (hooked === undefined) return coreWriteHead.apply(this, args)
    const { res } = hooked
    thaw(res) // the core writes the head (and its cookie) now
    try {
      return coreWriteHead.apply(this, args)
    } finally {
      // The core's end: it put back the end it replaced, and ends the response right after.
      if (endArgs !== undefined && res.end !== dropInEnd) release()
    }
  } as typeof res.writeHead

  return {
    lateError(err: unknown): boolean {
      failed = true
      const args = endArgs
      if (hooked === undefined) return false
      const { res, next: handOn } = hooked
      thaw(res)
      // The core has put back res.end and res.writeHead as they were before it: this sends the
      // app's response, without a cookie for the session that was not saved.
      if (args !== undefined && !res.writableEnded) (res.end as unknown as Method).apply(res, args)
      release()
      setImmediate(handOn, err)
      return true
    },
  }
}

function headersSent(verb: string): never {
  throw Object.assign(new Error(`Cannot ${verb} headers after they are sent to the client`), {
    code: 'ERR_HTTP_HEADERS_SENT',
  })
}
