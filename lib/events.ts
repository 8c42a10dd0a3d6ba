/**
 * Lifecycle events for audit logs: a session created, regenerated, renewed, destroyed or
 * expired, and a user signed out everywhere. Ids appear only as their keyed hash
 * (https://cheatsheetseries.owasp.org/cheatsheets/Session_Management_Cheat_Sheet.html, "Session
 * ID logging"), and a listener that throws or rejects never fails a request.
 */
import createDebug from 'debug'
import type { IdHashCache } from './id-hash-cache.js'
import type { StoreNotice } from './store-notices.js'

const debug = createDebug('concord-session')

/** Fields every event has. */
interface EventBase {
  /** Epoch ms the middleware saw it happen. */
  at: number
}

/** Fields of an event about one session. */
interface SessionEventBase extends EventBase {
  /** The keyed hash of the session id (`hashSessionId(id, idHashKey)`), never the id itself. */
  sessionId: string
  /** The owner set with `setUser`, when the session has one. */
  userId?: string
}

/**
 * One lifecycle event, as `onEvent` receives it.
 *
 * - `created`: a new session was first saved (not after a regenerate: that is `regenerated`).
 * - `regenerated`: `regenerate()` replaced a stored session's id; the old one is destroyed.
 * - `renewed`: the id was rotated by periodic renewal, keeping the data.
 * - `destroyed`: `destroy()`, or `req.session = null` with `unset: 'destroy'`.
 * - `expired`: found past its idle or absolute timeout: at a load (`seenAt: 'load'`), by a
 *   store's sweep (`'prune'`), or when a save met the absolute timeout (`'save'`).
 * - `signedOutEverywhere`: `store.destroyByUser(userId)` destroyed `count` live sessions.
 *
 * @example
 * ```ts
 * function audit(event: SessionEvent) {
 *   if (event.type === 'regenerated') log.info({ from: event.previousSessionId, to: event.sessionId })
 * }
 * ```
 */
export type SessionEvent =
  | ({ type: 'created' } & SessionEventBase)
  | ({ type: 'regenerated'; previousSessionId: string } & SessionEventBase)
  | ({ type: 'renewed'; previousSessionId: string } & SessionEventBase)
  | ({ type: 'destroyed' } & SessionEventBase)
  | ({ type: 'expired'; seenAt: 'load' | 'prune' | 'save' } & SessionEventBase)
  | ({ type: 'signedOutEverywhere'; userId: string; count: number } & EventBase)

/** The `onEvent` option: called once per event; what it returns (or rejects with) is ignored. */
export type SessionEventListener = (event: SessionEvent) => void | Promise<void>

/** The default `idHashKey`: ids carry 122+ random bits, so even a public key cannot be reversed. */
export const DEFAULT_ID_HASH_KEY = 'concord-session'

/**
 * Delivers events to the `onEvent` listener of one middleware. Built only when there is one,
 * so a middleware without it pays nothing but an `undefined` check.
 */
export class SessionEvents {
  #warned = false

  constructor(
    readonly listener: SessionEventListener,
    readonly hashes: IdHashCache,
  ) {}

  created(id: string, userId: string | undefined): void {
    this.emit(withUser({ type: 'created', sessionId: this.hash(id), at: Date.now() }, userId))
  }

  regenerated(previousId: string, id: string, userId: string | undefined): void {
    this.emit(
      withUser(
        {
          type: 'regenerated',
          sessionId: this.hash(id),
          previousSessionId: this.hash(previousId),
          at: Date.now(),
        },
        userId,
      ),
    )
  }

  /** Called by id renewal once it rotates a session's id. */
  renewed(previousId: string, id: string, userId: string | undefined): void {
    this.emit(
      withUser(
        {
          type: 'renewed',
          sessionId: this.hash(id),
          previousSessionId: this.hash(previousId),
          at: Date.now(),
        },
        userId,
      ),
    )
  }

  destroyed(id: string, userId: string | undefined): void {
    this.emit(withUser({ type: 'destroyed', sessionId: this.hash(id), at: Date.now() }, userId))
  }

  expired(id: string, seenAt: 'load' | 'prune' | 'save', userId: string | undefined): void {
    this.emit(
      withUser({ type: 'expired', sessionId: this.hash(id), seenAt, at: Date.now() }, userId),
    )
  }

  /** A store's notice, as an event. */
  fromStore(notice: StoreNotice): void {
    if (notice.type === 'expired') {
      // A store keyed by hashed ids reports the hash: the same value the core's events show.
      const sessionId = notice.hashed ? notice.id : this.hash(notice.id)
      const { seenAt } = notice
      this.emit(withUser({ type: 'expired', sessionId, seenAt, at: Date.now() }, notice.userId))
    } else
      this.emit({
        type: 'signedOutEverywhere',
        userId: notice.userId,
        count: notice.count,
        at: Date.now(),
      })
  }

  hash(id: string): string {
    return this.hashes.get(id)
  }

  /** Calls the listener; what it throws or rejects with is reported, never passed on. */
  emit(event: SessionEvent): void {
    try {
      const result = this.listener(event)
      if (result && typeof (result as Promise<void>).then === 'function')
        (result as Promise<void>).then(undefined, (err: unknown) => this.#failed(event, err))
    } catch (err) {
      this.#failed(event, err)
    }
  }

  #failed(event: SessionEvent, err: unknown): void {
    debug('the onEvent listener failed on a %s event: %O', event.type, err)
    if (this.#warned) return
    this.#warned = true
    process.emitWarning(
      `session(): the onEvent listener failed on a "${event.type}" event ` +
        `(${(err as Error)?.message ?? String(err)}). Requests go on; make the listener catch ` +
        'its own errors. Later failures are logged with DEBUG=concord-session.',
      { code: 'CONCORD_SESSION_EVENT_LISTENER' },
    )
  }
}

function withUser<E extends SessionEvent>(event: E, userId: string | undefined): E {
  if (userId !== undefined) (event as { userId?: string }).userId = userId
  return event
}
