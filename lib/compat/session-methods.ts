/**
 * `req.session` as express-session apps use it. The core's methods already take callbacks;
 * what differs:
 * - calling them without one: express-session ignores the outcome of `req.session.save()` or
 *   `touch()`, while a bare promise that rejects would crash the process (unhandled rejection);
 * - the errors: a store's own error, as the store gave it, and `reload()` of a session the
 *   store no longer has fails with express-session's "failed to load session";
 * - `cookie` is an own enumerable key, as on express-session's Session (`Object.keys`, for-in).
 * So, as express-session itself does (its `wrapmethods`), the drop-in puts non-enumerable
 * wrappers on each request's session, and again on the session `regenerate` puts in its place.
 */
import { Cookie as CoreCookie, Session, type Callback } from '../session.js'
import { adoptCookie } from './cookie.js'
import { storeOwnError } from './adapted-store.js'

const METHODS = ['save', 'regenerate', 'destroy', 'reload', 'touch'] as const
const adaptedSessions = new WeakSet<object>()
const coreCookie = Object.getOwnPropertyDescriptor(Session.prototype, 'cookie')!.get!

interface RequestWithSession {
  session?: Session | null
}

/**
 * Gives `req.session` express-session's calling conventions. Idempotent.
 *
 * @example
 * ```ts
 * adaptRequestSession(req)
 * req.session.save() // no callback, no promise handled: a failure is ignored, as in express-session
 * ```
 */
export function adaptRequestSession(req: RequestWithSession): void {
  const session = req.session
  if (!(session instanceof Session) || adaptedSessions.has(session)) return
  adaptedSessions.add(session)
  for (const name of METHODS) {
    Object.defineProperty(session, name, {
      configurable: true,
      enumerable: false,
      writable: true,
      value: compatMethod(req, name),
    })
  }
  // The core skips a key named "cookie" when it looks for data, so this is never saved as data.
  Object.defineProperty(session, 'cookie', {
    configurable: true,
    enumerable: true,
    get: () => adoptCookie(coreCookie.call(session)),
    // passport's keepSessionInfo copies every key of the old session onto the new one, cookie
    // included: its lifetime carries over, as when express-session copies the Cookie.
    set: (value: unknown) => {
      const current = coreCookie.call(session)
      if (!(value instanceof CoreCookie)) {
        throw new TypeError(
          'req.session.cookie cannot be replaced; set its attributes instead, e.g. ' +
            'req.session.cookie.maxAge = 3_600_000',
        )
      }
      if (value !== current && value.originalMaxAge !== current.originalMaxAge)
        current.maxAge = value.originalMaxAge
    },
  })
}

/** The error express-session would give for `err` from the core. */
export function expressSessionError(err: unknown): unknown {
  if ((err as { code?: unknown } | null)?.code === 'ESESSIONGONE') {
    return Object.assign(new Error('failed to load session'), { cause: err })
  }
  return storeOwnError(err)
}

function compatMethod(req: RequestWithSession, name: (typeof METHODS)[number]) {
  const original = Session.prototype[name] as (this: Session, ...args: unknown[]) => Promise<void>
  return function (this: Session, ...args: unknown[]): Promise<void> {
    const callback =
      typeof args[args.length - 1] === 'function' ? (args.pop() as Callback) : undefined
    // regenerate puts a new session on req: adapt that one too.
    const done = original.apply(this, args).then(
      () => adaptRequestSession(req),
      (err: unknown) => {
        adaptRequestSession(req)
        throw expressSessionError(err)
      },
    )
    if (callback)
      return done.then(
        () => callback(),
        (err: Error) => callback(err),
      )
    done.catch(() => {}) // express-session drops the outcome of a call without a callback
    return done
  }
}
