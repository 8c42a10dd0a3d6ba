/**
 * session(): binds the codec, the Session and the store to HTTP. The only file that knows
 * req and res.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import createDebug from 'debug'
import {
  clearCookie,
  readSessionCookie,
  serializeCookie,
  signSessionId,
  VerifiedIdCache,
  verifySessionId,
  type CookieAttributes,
  type Secret,
  type VerifiedId,
} from './cookie.js'
import { BatchQueue } from './keyed-queue.js'
import {
  resolveOptions,
  type Defaults,
  type ResolvedOptions,
  type SessionOptions,
} from './options.js'
import { RecentSaves } from './recent-saves.js'
import {
  commitSaves,
  commitSession,
  cookieChangedOf,
  createSession,
  endSession,
  resolvedCookieOf,
  restoreSession,
  Session,
  sessionEnded,
  viewOf,
  wouldSave,
  type PendingSave,
  type SessionHost,
} from './session.js'
import { StoreGuard } from './store-guard.js'
import type { Store } from './store.js'

const debug = createDebug('concord-session')

type Next = (err?: unknown) => void

interface SessionRequest extends IncomingMessage {
  session?: Session | null
  sessionID?: string
  sessionStore?: Store
  originalUrl?: string
  secure?: boolean
  secret?: string
  signedCookies?: Record<string, unknown>
}

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
  const shared: Shared = {
    options,
    batches: new BatchQueue<PendingSave>((_id, saves, queued) => commitSaves(saves, queued)),
    guard: new StoreGuard(options.saveTimeout),
    recent: new RecentSaves(),
    verified: new VerifiedIdCache(),
  }

  return function concordSession(req: IncomingMessage, res: ServerResponse, next: Next): void {
    const request = req as SessionRequest
    if (request.session) return next() // an outer session middleware already ran
    startSession(request, res, next, shared).catch(next)
  }
}

/** What every request of one middleware shares. */
interface Shared {
  readonly options: ResolvedOptions
  readonly batches: BatchQueue<PendingSave>
  readonly guard: StoreGuard
  readonly recent: RecentSaves
  /** Cookie values already verified under the configured secrets. */
  readonly verified: VerifiedIdCache
}

async function startSession(
  req: SessionRequest,
  res: ServerResponse,
  next: Next,
  shared: Shared,
): Promise<void> {
  const { options } = shared
  const cookieDefaults = options.cookie(req)
  if (!pathname(req).startsWith(cookieDefaults.path ?? '/')) return next()

  const secrets =
    options.secrets ?? (typeof req.secret === 'string' && req.secret ? [req.secret] : null)
  if (!secrets) {
    return next(
      new TypeError(
        'session(): a secret is required. Pass options.secret, or use cookie-parser with a secret before session()',
      ),
    )
  }

  const host = new RequestHost(req, shared, cookieDefaults)

  // The cache is for the configured secrets only: cookie-parser's req.secret may differ per request.
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
  const now = Date.now()
  let session: Session
  try {
    const record = incoming
      ? await shared.guard.call(
          () =>
            options.store.load(incoming.id, {
              touchAt: now,
              absoluteTimeout: options.absoluteTimeout,
            }),
          'load',
          incoming.id,
        )
      : null
    // An unknown id gets a fresh one, never the client's: https://owasp.org/www-community/attacks/Session_fixation
    if (incoming && !record)
      debug('session %s is unknown or expired: starting a fresh one', incoming.id)
    session = record
      ? restoreSession(host, incoming!.id, record, now)
      : createSession(host, await generateId(options, req), now)
  } catch (err) {
    return next(err)
  }

  host.attach(session)
  req.sessionStore = options.store
  hookResponse(req, res, next, host, incoming, session)
  next()
}

/** What a session needs from its request, as one object per request rather than closures. */
class RequestHost implements SessionHost {
  #secure: boolean | undefined

  constructor(
    readonly req: SessionRequest,
    readonly shared: Shared,
    readonly cookieDefaults: CookieAttributes,
  ) {}

  get options(): ResolvedOptions {
    return this.shared.options
  }
  get store(): Store {
    return this.shared.options.store
  }
  get batches(): BatchQueue<PendingSave> {
    return this.shared.batches
  }
  get guard(): StoreGuard {
    return this.shared.guard
  }
  get recent(): RecentSaves {
    return this.shared.recent
  }

  /** Computed once, when a cookie is written or `cookie.secure` is read: Express's req.secure is not free. */
  get secure(): boolean {
    return (this.#secure ??= isSecure(this.req, this.options.proxy))
  }

  generateId(): Promise<string> {
    return generateId(this.options, this.req)
  }

  attach(session: Session | undefined): void {
    if (session) {
      this.req.session = session
      this.req.sessionID = session.id
    } else {
      delete this.req.session
    }
  }
}

/**
 * Saves before the response finishes, so the request after a redirect sees the data, and
 * sets the cookie as the headers go out. `res.end`'s arguments are passed through untouched,
 * so no bytes, encodings or callbacks are lost (express-session #87 #477 #766).
 */
function hookResponse(
  req: SessionRequest,
  res: ServerResponse,
  next: Next,
  host: RequestHost,
  incoming: VerifiedId | null,
  first: Session,
): void {
  const { options } = host
  const originalEnd = res.end
  const originalWriteHead = res.writeHead
  let ending = false
  // The first end() while its save is pending; a later end() runs after it, in call order.
  let deferred: Promise<boolean> | undefined

  // Every response writes its head once, explicitly or from write()/end() (_implicitHeader).
  res.writeHead = function writeHeadWithCookie(this: ServerResponse, ...args: unknown[]) {
    res.writeHead = originalWriteHead
    setCookieHeader(req, res, host, incoming, first)
    return (originalWriteHead as (...a: unknown[]) => ServerResponse).apply(this, args)
  } as typeof res.writeHead

  res.end = function endAfterSave(this: ServerResponse, ...args: unknown[]) {
    if (deferred) {
      void deferred.then(
        (ended) => ended && (originalEnd as (...a: unknown[]) => ServerResponse).apply(res, args),
      )
      return this
    }
    if (ending) return (originalEnd as (...a: unknown[]) => ServerResponse).apply(this, args)
    ending = true
    let pending: Promise<void> | undefined
    try {
      pending = res.statusCode >= 500 ? undefined : finishSession(req, options, first)
    } catch (err) {
      fail(err)
      return this
    }
    if (!pending) {
      res.end = originalEnd
      return (originalEnd as (...a: unknown[]) => ServerResponse).apply(this, args)
    }
    deferred = pending.then(
      () => {
        res.end = originalEnd
        ;(originalEnd as (...a: unknown[]) => ServerResponse).apply(res, args)
        return true
      },
      (err: unknown) => {
        fail(err)
        return false // the error handler answers: the app's later end() calls are dropped
      },
    )
    return this
  } as typeof res.end

  function fail(err: unknown): void {
    // The response the app built claims a change that was not saved: hand the error on instead.
    res.end = originalEnd
    res.writeHead = originalWriteHead
    next(err)
  }
}

/** The end-of-request save, or undefined when there is nothing to write. */
function finishSession(
  req: SessionRequest,
  options: ResolvedOptions,
  first: Session,
): Promise<void> | undefined {
  const current = req.session
  if (current instanceof Session) return commitSession(current)
  // req.session was set to null, deleted or replaced by the app, not by destroy().
  if (options.unset === 'destroy' && !sessionEnded(first)) return endSession(first)
  return undefined
}

function setCookieHeader(
  req: SessionRequest,
  res: ServerResponse,
  host: RequestHost,
  incoming: VerifiedId | null,
  first: Session,
): void {
  const { options } = host
  if (res.statusCode >= 500) return // nothing was saved
  // Anything but a Session here (null, deleted, or a plain object the app assigned) counts as unset.
  const current = req.session instanceof Session ? req.session : undefined
  if (!current) {
    // destroy(), or the app unset req.session with unset: 'destroy': drop the browser's cookie.
    if (incoming && (sessionEnded(first) || options.unset === 'destroy')) {
      appendSetCookie(res, clearCookie(options.name, resolvedCookieOf(first)))
    }
    return
  }
  const status = viewOf(current)
  if (status.ended) {
    // Destroyed elsewhere while this request ran (a logout racing it): never re-issue it.
    if (incoming) appendSetCookie(res, clearCookie(options.name, resolvedCookieOf(current)))
    return
  }
  const isNew = status.id !== incoming?.id
  let send: boolean
  try {
    send = isNew
      ? status.version !== null || wouldSave(current)
      : options.rolling ||
        incoming!.rotated ||
        // A cookie made a browser-session one must reach the browser too, or its old Expires stays.
        (status.changedThisRequest &&
          (cookieChangedOf(current) ||
            current.cookie.expires !== null ||
            options.absoluteTimeout !== undefined))
  } catch {
    return // data that cannot be saved: the save at the end reports it
  }
  if (!send) return
  const cookie = resolvedCookieOf(current)
  if (cookie.secure && !host.secure) {
    debug('not sending the Secure cookie of %s over plain HTTP (see the proxy option)', status.id)
    return
  }
  // Same id under the first secret: the value the browser sent is already the right one.
  const value =
    incoming?.signed !== undefined && incoming.id === status.id && !incoming.rotated
      ? incoming.signed
      : signSessionId(status.id, options.secrets?.[0] ?? req.secret!)
  appendSetCookie(res, serializeCookie(options.name, value, cookie))
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

async function generateId(options: ResolvedOptions, req: IncomingMessage): Promise<string> {
  const id = await options.genid(req)
  if (!options.isValidId(id)) {
    throw new TypeError(
      `session(): genid returned ${JSON.stringify(id)}; an id must be 1-256 characters of A-Z a-z 0-9 _ - + = .`,
    )
  }
  return id
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

/** express-session's rule for `secure: 'auto'` and the `proxy` option. */
function isSecure(req: SessionRequest, proxy: boolean | undefined): boolean {
  if ((req.socket as { encrypted?: boolean } | undefined)?.encrypted) return true
  if (proxy === false) return false
  if (proxy !== true) return req.secure === true
  const header = req.headers['x-forwarded-proto']
  const proto = ((Array.isArray(header) ? header[0] : header) ?? '')
    .split(',')[0]!
    .trim()
    .toLowerCase()
  return proto === 'https'
}
