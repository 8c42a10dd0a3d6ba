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
  lateError(err: unknown): void
}

/**
 * Wraps `res.end` and `res.writeHead` outside the core's wrappers (call it after the core has
 * hooked the response).
 *
 * @example
 * ```ts
 * const response = hookDropInResponse(res, next)
 * // later, when the core calls next(err) a second time:
 * response.lateError(err)
 * ```
 */
export function hookDropInResponse(
  req: IncomingMessage & { sessionID?: unknown },
  res: ServerResponse,
  next: Next,
  plain: Pick<ServerResponse, 'end' | 'writeHead'>,
): DropInResponse {
  const coreEnd = res.end as unknown as Method
  const coreWriteHead = res.writeHead as unknown as Method
  let endArgs: unknown[] | undefined
  let failed = false
  const saved = new Map<string, PropertyDescriptor | undefined>()

  function freeze(): void {
    for (const [name, verb] of Object.entries(FROZEN)) {
      if (typeof (res as unknown as Record<string, unknown>)[name] !== 'function') continue
      saved.set(name, Object.getOwnPropertyDescriptor(res, name))
      Object.defineProperty(res, name, {
        configurable: true,
        writable: true,
        value: () => headersSent(verb),
      })
    }
  }

  function thaw(): void {
    for (const [name, descriptor] of saved) {
      if (descriptor) Object.defineProperty(res, name, descriptor)
      else delete (res as unknown as Record<string, unknown>)[name]
    }
    saved.clear()
  }

  res.end = function dropInEnd(this: ServerResponse, ...args: unknown[]) {
    if (endArgs !== undefined) return coreEnd.apply(this, args)
    endArgs = args
    if (typeof req.sessionID !== 'string') {
      // As express-session: no save, no touch, no cookie. The core's hooks are left out.
      res.end = plain.end
      res.writeHead = plain.writeHead
      return (plain.end as unknown as Method).apply(this, args)
    }
    const result = coreEnd.apply(this, args)
    // The core holds the head back while the save runs.
    if (!failed && !res.headersSent) freeze()
    return result
  } as typeof res.end

  res.writeHead = function dropInWriteHead(this: ServerResponse, ...args: unknown[]) {
    thaw() // the core writes the head (and its cookie) now
    return coreWriteHead.apply(this, args)
  } as typeof res.writeHead

  return {
    lateError(err: unknown): void {
      failed = true
      thaw()
      // The core has put back res.end and res.writeHead as they were before it: this sends the
      // app's response, without a cookie for the session that was not saved.
      if (endArgs !== undefined && !res.writableEnded)
        (res.end as unknown as Method).apply(res, endArgs)
      setImmediate(next, err)
    },
  }
}

function headersSent(verb: string): never {
  throw Object.assign(new Error(`Cannot ${verb} headers after they are sent to the client`), {
    code: 'ERR_HTTP_HEADERS_SENT',
  })
}
