/**
 * The response hook: sets the session cookie as the head goes out, and commits the session
 * before the response ends, so the request after a redirect sees the data. `res.end`'s
 * arguments are passed through untouched, so no bytes, encodings or callbacks are lost
 * (express-session #87 #477 #766).
 *
 * Why through Node's `ServerResponse.prototype`: Express gives every request and response a
 * new prototype (`Object.setPrototypeOf`), and V8 then builds a new hidden class (map) for each
 * property added to that object, copying every property's descriptor: about 1.5 KB and an
 * inline-cache miss per property per request. So a response whose `end` and `writeHead` are
 * Node's own is hooked without a property on it: Node's two methods are wrapped once per
 * process, and look up the response's hook in a WeakMap. Any other response (one whose `end`
 * or `writeHead` someone replaced, an HTTP/2 compatibility response, a test's fake) gets the
 * classic wrappers as own properties.
 */
import { ServerResponse } from 'node:http'

type Method = (...args: unknown[]) => ServerResponse
type Next = (err?: unknown) => void

/** What the hook asks of the request's session. */
export interface HookedSession {
  /** The Set-Cookie value for a head with this status, if any. */
  setCookie(statusCode: number): string | undefined
  /** Saves what changed; a promise when the store answers later. */
  commit(statusCode: number): Promise<void> | undefined
}

/** The hooks of responses hooked through the prototype. */
const hooks = new WeakMap<ServerResponse, ResponseHook>()

/** A response's `end` and `writeHead`. */
interface Methods {
  end: Method
  writeHead: Method
}
/** Node's methods, and the wrappers that replaced them on its prototype. */
let node: { original: Methods; wrapped: Methods } | undefined

/**
 * Hooks `res` for `session`: on the head, its cookie; on the end, its commit, before the
 * response goes out. A failed commit calls `next(err)` instead of ending the response.
 *
 * @example
 * ```ts
 * hookResponse(res, next, life)
 * next()
 * ```
 */
export function hookResponse(res: ServerResponse, next: Next, session: HookedSession): void {
  const { original, wrapped } = node ?? wrapServerResponse()
  if (res.end === wrapped.end && res.writeHead === wrapped.writeHead) {
    hooks.set(res, new ResponseHook(res, next, session, original, false))
    return
  }
  const own = { end: res.end, writeHead: res.writeHead } as unknown as Methods
  const hook = new ResponseHook(res, next, session, own, true)
  // Unnamed (stack traces still say res.end): a named function expression costs a name
  // property per request under esbuild's keepNames, as tsx runs TypeScript.
  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    return hook.writeHead(this, args)
  } as typeof res.writeHead
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    return hook.end(this, args)
  } as typeof res.end
}

/**
 * Takes a hook made through the prototype off `res`, so its end and head go out as if the
 * session middleware had not run. (A hook made of own properties is undone by putting back
 * the `end` and `writeHead` that `res` had before.) For the express-session drop-in, which
 * sends some responses without a save or a cookie.
 *
 * @example
 * ```ts
 * const plain = { end: res.end, writeHead: res.writeHead } // before the core hooks res
 * // ...
 * unhookResponse(res)
 * Object.assign(res, plain)
 * ```
 */
export function unhookResponse(res: ServerResponse): void {
  hooks.delete(res)
}

/** Wraps Node's two methods, once per process: a response without a hook goes straight through. */
function wrapServerResponse(): { original: Methods; wrapped: Methods } {
  const proto = ServerResponse.prototype as unknown as Methods
  const { end, writeHead } = proto
  proto.end = function (this: ServerResponse, ...args: unknown[]) {
    const hook = hooks.get(this)
    return hook?.endHooked ? hook.end(this, args) : end.apply(this, args)
  }
  proto.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    const hook = hooks.get(this)
    return hook?.headHooked ? hook.writeHead(this, args) : writeHead.apply(this, args)
  }
  return (node = {
    original: { end, writeHead },
    wrapped: { end: proto.end, writeHead: proto.writeHead },
  })
}

/** One response's hook: where its head and end stand, and the methods it calls on. */
class ResponseHook {
  /** Until the head went out: the cookie is still to be set. */
  headHooked = true
  /** Until the response was let end. */
  endHooked = true
  ending = false
  /** The first end() while its save is pending; a later end() runs after it, in call order. */
  deferred: Promise<boolean> | undefined = undefined

  constructor(
    readonly res: ServerResponse,
    readonly next: Next,
    readonly session: HookedSession,
    /** What end and head went to before the hook: Node's own, or the response's own. */
    readonly methods: Methods,
    /** Hooked with own properties (which unhooking puts back) rather than through the prototype. */
    readonly own: boolean,
  ) {}

  /** Every response writes its head once, explicitly or from write()/end() (_implicitHeader). */
  writeHead(self: ServerResponse, args: unknown[]): ServerResponse {
    const { res } = this
    this.#unhookHead()
    const setCookie = this.session.setCookie(res.statusCode)
    if (setCookie !== undefined) appendSetCookie(res, setCookie)
    return this.methods.writeHead.apply(self, args)
  }

  end(self: ServerResponse, args: unknown[]): ServerResponse {
    const { res, methods } = this
    if (this.deferred) {
      void this.deferred.then((ended) => ended && methods.end.apply(res, args))
      return self
    }
    if (this.ending) return methods.end.apply(self, args)
    this.ending = true
    let pending: Promise<void> | undefined
    try {
      pending = this.session.commit(res.statusCode)
    } catch (err) {
      this.fail(err)
      return self
    }
    if (!pending) {
      this.#unhookEnd()
      return methods.end.apply(self, args)
    }
    this.deferred = pending.then(
      () => {
        this.#unhookEnd()
        methods.end.apply(res, args)
        return true
      },
      (err: unknown) => {
        this.fail(err)
        return false // the error handler answers: the app's later end() calls are dropped
      },
    )
    return self
  }

  /** The response the app built claims a change that was not saved: hand the error on instead. */
  fail(err: unknown): void {
    this.#unhookEnd()
    this.#unhookHead()
    this.next(err)
  }

  #unhookHead(): void {
    this.headHooked = false
    if (this.own) this.res.writeHead = this.methods.writeHead as ServerResponse['writeHead']
  }

  #unhookEnd(): void {
    this.endHooked = false
    if (this.own) this.res.end = this.methods.end as ServerResponse['end']
  }
}

function appendSetCookie(res: ServerResponse, value: string): void {
  const previous = res.getHeader('Set-Cookie')
  if (previous === undefined) res.setHeader('Set-Cookie', value)
  else
    res.setHeader('Set-Cookie', [
      ...(Array.isArray(previous) ? previous : [String(previous)]),
      value,
    ])
}
