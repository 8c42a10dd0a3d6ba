/**
 * `req.session` as express-session apps use it. The core's methods already take callbacks;
 * what differs is calling them without one: express-session ignores the outcome of
 * `req.session.save()` or `touch()`, while a bare promise that rejects would crash the
 * process (unhandled rejection). So, as express-session itself does (its `wrapmethods`), the
 * drop-in puts non-enumerable wrappers on each request's session, and again on the session
 * `regenerate` puts in its place.
 */
import { Session, type Callback } from '../session.js'

const METHODS = ['save', 'regenerate', 'destroy', 'reload', 'touch'] as const
const adaptedSessions = new WeakSet<object>()

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
  if (!session) return
  if (!adaptedSessions.has(session)) {
    adaptedSessions.add(session)
    for (const name of METHODS) {
      Object.defineProperty(session, name, { configurable: true, enumerable: false, writable: true, value: compatMethod(req, name) })
    }
  }
}

function compatMethod(req: RequestWithSession, name: (typeof METHODS)[number]) {
  const original = Session.prototype[name] as (this: Session, ...args: unknown[]) => Promise<void>
  return function (this: Session, ...args: unknown[]): Promise<void> {
    const callback = typeof args[args.length - 1] === 'function' ? (args.pop() as Callback) : undefined
    // regenerate puts a new session on req: adapt that one too.
    const done = original.apply(this, args).finally(() => adaptRequestSession(req))
    if (callback) return done.then(() => callback(), (err: Error) => callback(err))
    done.catch(() => {}) // express-session drops the outcome of a call without a callback
    return done
  }
}
