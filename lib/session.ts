/**
 * The Session on `req.session`: the user's data as its own properties, and the methods
 * save, regenerate, destroy, reload and touch, each returning a promise and taking an
 * optional callback. Knows the store but not req or res: what depends on the request
 * comes in through a {@link SessionHost}.
 */
import { defineKey } from './util.js'
import { tracedLoad, tracedTouch } from './diagnostics.js'
import { absoluteEnd, idleExpiry } from './expiry.js'
import { destroyInStore, writePlan } from './save.js'
import { saveInTick } from './save-now.js'
import { planSave } from './save-plan.js'
import { parseOnto, refreshData } from './save-data.js'
import { Cookie, cookieOverrides, NO_OVERRIDES } from './session-cookie.js'
import {
  NO_EXPIRES,
  NO_TEXTS,
  provideStateOf,
  stateOf,
  type SessionHost,
  type State,
} from './session-state.js'
import { callStore } from './store-guard.js'
import { storedIdIn } from './protect-at-rest.js'
import type { SessionRecord } from './store.js'

export { callStore, Cookie }
export type { SessionEnd, SessionHost } from './session-state.js'

/**
 * The shape of your session data. Augment it for typed `req.session` keys.
 *
 * @example
 * ```ts
 * declare module 'concord-session' {
 *   interface SessionData { cart: { items: string[] }; visits: number }
 * }
 * ```
 */
export interface SessionData {}

export type Callback = (err?: Error | null) => void

/**
 * A session. Your data lives on it as ordinary properties (`req.session.cart = …`); the
 * methods below are on its prototype, and its bookkeeping is private, so neither shows up in
 * `Object.keys(req.session)` or in the stored data.
 *
 * @example
 * ```ts
 * app.post('/login', async (req, res) => {
 *   await req.session.regenerate({ keepData: true }) // new id, same cart: no session fixation
 *   req.session.setUser(user.id)
 *   res.redirect('/cart')
 * })
 * ```
 */
export class Session {
  #state: State

  /** @internal Sessions are made by the middleware. */
  constructor(state: State) {
    this.#state = state
  }

  /** The session id (also `req.sessionID` under the express-session drop-in). */
  get id(): string {
    return this.#state.id
  }

  /** This session's cookie settings. */
  get cookie(): Cookie {
    return this.#state.cookie
  }

  /**
   * Saves now rather than at the end of the response. Changes made after it are saved at the
   * end as usual. If another request saved in between, its changes are merged in and this
   * session's data is refreshed to the merged result.
   */
  save(callback?: Callback): Promise<void> {
    return withCallback(saveSession(this), callback)
  }

  /**
   * Replaces the session id, so an id fixed before login is useless after it
   * (https://owasp.org/www-community/attacks/Session_fixation). The old id is destroyed now.
   * With `keepData: true` the data, owner and cookie settings carry over (the cart survives
   * login); otherwise the new session starts empty. `req.session` is the new session afterwards.
   */
  regenerate(options?: { keepData?: boolean } | Callback, callback?: Callback): Promise<void> {
    const opts = typeof options === 'function' ? {} : (options ?? {})
    return withCallback(
      regenerateSession(this, opts.keepData === true),
      typeof options === 'function' ? options : callback,
    )
  }

  /** Destroys the session in the store now, takes it off `req.session`, and clears the cookie. */
  destroy(callback?: Callback): Promise<void> {
    return withCallback(destroySession(this), callback)
  }

  /** Replaces the data with what the store holds now. Rejects if the session is gone. */
  reload(callback?: Callback): Promise<void> {
    return withCallback(reloadSession(this), callback)
  }

  /** Restarts the idle timeout now, in the cookie and in the store. */
  touch(callback?: Callback): Promise<void> {
    return withCallback(touchSession(this), callback)
  }

  /** express-session's name for restarting the cookie's lifetime (not saved by itself). */
  resetMaxAge(): this {
    this.#state.cookie.resetMaxAge()
    return this
  }

  /**
   * Links the session to a user, for `store.listByUser(id)` and `store.destroyByUser(id)`
   * ("sign out everywhere"). `null` unlinks it. Saved with the session.
   */
  setUser(userId: string | null): this {
    if (userId !== null && (typeof userId !== 'string' || userId.length === 0)) {
      throw new TypeError(
        `setUser(userId): userId must be a non-empty string or null, got ${JSON.stringify(userId)}`,
      )
    }
    this.#state.userId = userId ?? undefined
    return this
  }

  static {
    provideStateOf((session) => session.#state)
  }
}

/** What is known of a session beyond its data; see {@link sessionInfo}. */
export interface SessionInfo {
  id: string
  /** Epoch ms the session began (for a new session, this request). */
  createdAt: number
  /** Epoch ms it ends if no request comes: min(now + idle timeout, absolute end). */
  idleExpiresAt: number
  /** Epoch ms it ends however active it is, or null without `absoluteTimeout`. */
  absoluteExpiresAt: number | null
  /** Not saved yet. */
  isNew: boolean
  /** The owner set with `setUser`. */
  userId: string | undefined
  /**
   * The id the store keeps this session under: the keyed hash of `id` (with `hashIds`, the
   * default), as `store.listByUser` returns it. Mark "this device" in a list of sessions with
   * it; `store.destroy(storedId)` signs one of them out.
   */
  storedId: string
}

/**
 * When a session began and when it ends, and its owner, read without a store call. A function
 * rather than properties on `req.session`, so no name can collide with your session keys.
 *
 * @example
 * ```ts
 * import { sessionInfo } from 'concord-session'
 * const { absoluteExpiresAt } = sessionInfo(req.session)
 * res.render('account', { signOutAt: absoluteExpiresAt })
 * ```
 */
export function sessionInfo(session: Session, now = Date.now()): SessionInfo {
  const state = stateOf(session)
  const { absoluteTimeout, idleTimeout } = state.host.options
  const idle = state.cookie.originalMaxAge ?? idleTimeout
  const end = absoluteEnd(state.createdAt, absoluteTimeout)
  return {
    id: state.id,
    createdAt: state.createdAt,
    idleExpiresAt: idleExpiry(now, idle, state.createdAt, absoluteTimeout),
    absoluteExpiresAt: end === Infinity ? null : end,
    isNew: state.version === null,
    userId: state.userId,
    storedId: storedIdIn(state.host.store, state.id),
  }
}

/** A new, unsaved session. */
export function createSession(host: SessionHost, id: string, now = Date.now()): Session {
  return new Session({
    host,
    id,
    version: null,
    createdAt: now,
    baseline: NO_TEXTS,
    userId: undefined,
    savedUserId: undefined,
    savedCookie: NO_OVERRIDES,
    cookie: new Cookie(host.cookieDefaults, NO_OVERRIDES, now, host),
    keyExpires: NO_EXPIRES,
    changedThisRequest: false,
    ended: undefined,
  })
}

/**
 * A session from a stored record. Corrupt JSON in the record is a StoreError. The record is
 * read, never changed: a store may hand out its own copy.
 */
export function restoreSession(
  host: SessionHost,
  id: string,
  record: SessionRecord,
  now = Date.now(),
): Session {
  const session = new Session({
    host,
    id,
    version: record.version,
    createdAt: record.createdAt,
    baseline: record.data,
    userId: record.userId,
    savedUserId: record.userId,
    savedCookie: record.cookie,
    cookie: new Cookie(host.cookieDefaults, record.cookie, now, host),
    keyExpires: record.keyExpires ?? NO_EXPIRES,
    changedThisRequest: false,
    ended: undefined,
  })
  parseOnto(session as unknown as Record<string, unknown>, id, record.data)
  return session
}

/** An explicit `save()`: writes even when nothing changed. */
async function saveSession(session: Session): Promise<void> {
  const state = stateOf(session)
  if (state.ended) {
    const how = state.ended === 'gone' ? 'destroyed elsewhere' : 'destroyed'
    throw new Error(`session ${state.id} was ${how}; it cannot be saved`)
  }
  const plan = planSave(session, true)
  if (plan && !saveInTick(session, plan)) await writePlan(session, plan)
  if (stateOf(session).ended === 'gone')
    throw new Error(`session ${state.id} was destroyed elsewhere; the save was dropped`)
}

async function regenerateSession(session: Session, keepData: boolean): Promise<void> {
  const state = stateOf(session)
  const { host } = state
  const stored = state.version !== null && !state.ended
  if (stored) await destroyInStore(state, 'regenerate')
  state.ended = 'destroyed'
  const next = createSession(host, await host.generateId())
  if (stored && host.events) {
    // Its first save is part of this event, not a `created` one.
    stateOf(next).regenerated = true
    host.events.regenerated(state.id, next.id, keepData ? state.userId : undefined)
  }
  if (keepData) {
    const nextState = stateOf(next)
    const source = session as unknown as Record<string, unknown>
    for (const key of Object.keys(session))
      if (key !== 'cookie') defineKey(next as unknown as Record<string, unknown>, key, source[key])
    nextState.userId = state.userId
    // Keys with a lifetime of their own keep it: the new session saves them with it.
    const lifetimes = { ...state.keyExpires, ...state.ttlSets }
    if (Object.keys(lifetimes).length > 0) nextState.ttlSets = lifetimes
    nextState.cookie = new Cookie(
      host.cookieDefaults,
      cookieOverrides(state.cookie),
      Date.now(),
      host,
    )
  }
  host.attach(next)
}

async function destroySession(session: Session): Promise<void> {
  const state = stateOf(session)
  if (!state.ended) {
    await destroyInStore(state, 'destroy')
    if (state.version !== null) state.host.events?.destroyed(state.id, state.savedUserId)
  }
  state.ended = 'destroyed'
  state.host.attach(undefined)
}

async function reloadSession(session: Session): Promise<void> {
  const state = stateOf(session)
  const { host, id } = state
  const record =
    state.version === null || state.ended
      ? null
      : await tracedLoad(host.idHashes, id, false, () =>
          host.guard.call(() => host.store.load(id), 'load', id),
        )
  if (!record)
    throw Object.assign(
      new Error(
        `session ${state.id} cannot be reloaded: ` +
          'it is not in the store (new, expired or destroyed)',
      ),
      { code: 'ESESSIONGONE' },
    )
  state.version = record.version
  state.userId = state.savedUserId = record.userId
  state.savedCookie = record.cookie
  state.keyExpires = record.keyExpires ?? NO_EXPIRES
  state.ttlSets = undefined
  state.cookie = new Cookie(state.host.cookieDefaults, record.cookie, Date.now(), state.host)
  refreshData(session, record.data)
}

async function touchSession(session: Session): Promise<void> {
  const state = stateOf(session)
  const now = Date.now()
  state.cookie.resetMaxAge(now)
  if (state.version === null || state.ended) return
  const { options, guard, store } = state.host
  const idle = state.cookie.originalMaxAge ?? options.idleTimeout
  const expiresAt = idleExpiry(now, idle, state.createdAt, options.absoluteTimeout)
  const id = state.id
  await tracedTouch(state.host.idHashes, id, () =>
    guard.call(() => store.touch(id, expiresAt), 'touch', id),
  )
}

function withCallback(promise: Promise<void>, callback: Callback | undefined): Promise<void> {
  if (!callback) return promise
  // With a callback the error goes there, so the returned promise must not reject unhandled.
  return promise.then(
    () => callback(),
    (err: Error) => callback(err),
  )
}

declare global {
  namespace Express {
    interface Request {
      session: Session & Partial<SessionData>
    }
  }
}
