/**
 * session(): binds a request's session (lib/request-session.ts) to HTTP: reads the cookie,
 * opens the session, sets the cookie as the headers go out, commits before the response ends.
 * The only file that knows res.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import createDebug from 'debug'
import {
  readSessionCookie,
  VerifiedIdCache,
  verifySessionId,
  type Secret,
  type VerifiedId,
} from './cookie.js'
import {
  resolveOptions,
  type Defaults,
  type ResolvedOptions,
  type SessionOptions,
} from './options.js'
import {
  createShared,
  RequestSession,
  type SessionRequest,
  type Shared,
} from './request-session.js'
import type { SessionRecord, Store } from './store.js'

const debug = createDebug('concord-session')

type Next = (err?: unknown) => void

/** The request handler `session()` returns. Works with Express 4 and 5, and Connect. */
export type SessionMiddleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void

/**
 * Builds the middleware from an entry point's defaults. `session()` in the main entry and
 * the express-session drop-in are both this, with different defaults.
 */
export function createSessionMiddleware(
  defaults: Defaults,
  storeOrOptions?: Store | SessionOptions,
  maybeOptions?: SessionOptions,
): SessionMiddleware {
  const options = resolveOptions(defaults, storeOrOptions, maybeOptions)
  const shared = createShared(options, new VerifiedIdCache())

  return function concordSession(req: IncomingMessage, res: ServerResponse, next: Next): void {
    const request = req as SessionRequest
    if (request.session) return next() // an outer session middleware already ran
    try {
      startSession(request, res, next, shared)
    } catch (err) {
      next(err)
    }
  }
}

/** Opens the request's session, then calls `next`. Any error reaches `next`, never a throw. */
function startSession(req: SessionRequest, res: ServerResponse, next: Next, shared: Shared): void {
  const { options } = shared
  const cookieDefaults = options.cookie(req)
  if (!pathname(req).startsWith(cookieDefaults.path ?? '/')) return next()

  const secrets =
    options.secrets ?? (typeof req.secret === 'string' && req.secret ? [req.secret] : null)
  if (!secrets) {
    return next(
      new TypeError(
        'session(): a secret is required. ' +
          'Pass options.secret, or use cookie-parser with a secret before session()',
      ),
    )
  }

  // The cache is for the configured secrets only: cookie-parser's req.secret may vary per request.
  const incoming =
    readSessionCookie(
      req.headers.cookie,
      options.name,
      secrets,
      options.isValidId,
      secrets === options.secrets ? shared.verified : undefined,
    ) ?? fromCookieParser(req, options, secrets)
  if (!incoming && debug.enabled && req.headers.cookie?.includes(`${options.name}=`)) {
    debug('cookie %s is unsigned, tampered or malformed: starting a fresh session', options.name)
  }
  const life = new RequestSession(req, shared, cookieDefaults, incoming)
  const now = Date.now()
  // Promises, not an async function: the load's promise is the only one a warm read waits on,
  // and a store that answers in this tick gives the record itself.
  const loading = life.load(now)
  if (loading === null || !isPromise(loading)) return open(life, loading, now, res, next)
  openWhenLoaded(life, loading, now, res, next)
}

/** Apart from startSession, so a load answered in the tick builds no closure context. */
function openWhenLoaded(
  life: RequestSession,
  loading: Promise<SessionRecord | null>,
  now: number,
  res: ServerResponse,
  next: Next,
): void {
  loading.then((record) => open(life, record, now, res, next), next)
}

/** A record has no `then`; duck-typed, since tracing hands back a promise of Node's own realm. */
function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown }).then === 'function'
}

/** After the load: puts the session on the request, hooks the response, calls `next`. */
function open(
  life: RequestSession,
  record: SessionRecord | null,
  now: number,
  res: ServerResponse,
  next: Next,
): void {
  try {
    const opening = life.open(record, now)
    if (opening) return proceedWhenOpen(life, opening, res, next)
  } catch (err) {
    return next(err)
  }
  proceed(life, res, next)
}

function proceedWhenOpen(
  life: RequestSession,
  opening: Promise<void>,
  res: ServerResponse,
  next: Next,
): void {
  opening.then(() => proceed(life, res, next), next)
}

function proceed(life: RequestSession, res: ServerResponse, next: Next): void {
  try {
    hookResponse(res, next, life)
    next()
  } catch (err) {
    next(err)
  }
}

/**
 * Saves before the response finishes, so the request after a redirect sees the data, and
 * sets the cookie as the headers go out. `res.end`'s arguments are passed through untouched,
 * so no bytes, encodings or callbacks are lost (express-session #87 #477 #766). The two
 * wrappers are all that is added to res: its state is the hook's, not res's.
 */
function hookResponse(res: ServerResponse, next: Next, life: RequestSession): void {
  const hook = new ResponseHook(res, next, life)
  // Unnamed (stack traces still say res.end): a named function expression costs a name
  // property per request under esbuild's keepNames, as tsx runs TypeScript.
  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    return hook.writeHead(this, args)
  } as typeof res.writeHead
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    return hook.end(this, args)
  } as typeof res.end
}

type End = (...args: unknown[]) => ServerResponse

/** What the hook works on until it is done: the response, Express's next, the session. */
interface Hooked {
  readonly res: ServerResponse
  readonly next: Next
  readonly life: RequestSession
}

/**
 * One response's hook: the methods it replaced, and where its end stands.
 *
 * Once the head is written and end() has run, the hook lets go of the response, the request
 * and the session ({@link ResponseHook.release}). Express swaps the prototype of every
 * response, and V8 keeps a function added as a property of such an object alive until a full
 * collection, however soon it is replaced: each young-generation collection before then copied
 * all the wrappers reached, about 5 KB per request (measured with `node --trace-gc-nvp`).
 */
class ResponseHook {
  readonly originalEnd: End
  readonly originalWriteHead: End
  /** Undefined once the hook is done with the response. */
  hooked: Hooked | undefined
  headWritten = false
  ending = false
  ended = false
  /** The first end() while its save is pending; a later end() runs after it, in call order. */
  deferred: Promise<boolean> | undefined = undefined

  constructor(res: ServerResponse, next: Next, life: RequestSession) {
    this.hooked = { res, next, life }
    this.originalEnd = res.end as End
    this.originalWriteHead = res.writeHead as End
  }

  /** Every response writes its head once, explicitly or from write()/end() (_implicitHeader). */
  writeHead(self: ServerResponse, args: unknown[]): ServerResponse {
    const { hooked } = this
    if (hooked === undefined || this.headWritten) return this.originalWriteHead.apply(self, args)
    const { res, life } = hooked
    this.headWritten = true
    res.writeHead = this.originalWriteHead as typeof res.writeHead
    const setCookie = life.setCookie(res.statusCode)
    if (setCookie !== undefined) appendSetCookie(res, setCookie)
    try {
      return this.originalWriteHead.apply(self, args)
    } finally {
      if (this.ended) this.release()
    }
  }

  end(self: ServerResponse, args: unknown[]): ServerResponse {
    const { originalEnd, hooked } = this
    if (this.deferred) {
      const target = hooked?.res ?? self
      void this.deferred.then((ended) => ended && originalEnd.apply(target, args))
      return self
    }
    if (this.ending || hooked === undefined) return originalEnd.apply(self, args)
    const { res, life } = hooked
    this.ending = true
    let pending: Promise<void> | undefined
    try {
      pending = life.commit(res.statusCode)
    } catch (err) {
      this.fail(err)
      return self
    }
    if (!pending) {
      res.end = originalEnd as typeof res.end
      return this.endNow(self, args)
    }
    this.deferred = pending.then(
      () => {
        res.end = originalEnd as typeof res.end
        this.endNow(res, args)
        return true
      },
      (err: unknown) => {
        this.fail(err)
        return false // the error handler answers: the app's later end() calls are dropped
      },
    )
    return self
  }

  /** Node's end (or the wrapper before this one), then the hook is done unless the head waits. */
  endNow(self: ServerResponse, args: unknown[]): ServerResponse {
    try {
      return this.originalEnd.apply(self, args)
    } finally {
      this.ended = true
      // A wrapper before this one may write the head later; the cookie goes with it then.
      if (this.headWritten || this.hooked?.res.headersSent) this.release()
    }
  }

  /** The response the app built claims a change that was not saved: hand the error on instead. */
  fail(err: unknown): void {
    const { res, next } = this.hooked!
    res.end = this.originalEnd as typeof res.end
    res.writeHead = this.originalWriteHead as typeof res.writeHead
    this.release()
    next(err)
  }

  /**
   * Drops the response, the request and the session: from here on both wrappers only pass
   * calls through. The session stays on req.session for code that runs after the response.
   */
  release(): void {
    this.hooked = undefined
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

/** cookie-parser may have parsed and unsigned the cookie already. */
function fromCookieParser(
  req: SessionRequest,
  options: ResolvedOptions,
  secrets: readonly Secret[],
): VerifiedId | null {
  const value = req.signedCookies?.[options.name]
  if (typeof value === 'string' && options.isValidId(value)) return { id: value, rotated: false }
  const raw = (req as { cookies?: Record<string, unknown> }).cookies?.[options.name]
  return typeof raw === 'string' ? verifySessionId(raw, secrets, options.isValidId) : null
}

function pathname(req: SessionRequest): string {
  const url = req.originalUrl || req.url || '/'
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}
