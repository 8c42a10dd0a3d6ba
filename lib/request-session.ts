/**
 * One request's session, from the load to the commit. Read top to bottom, its three entry
 * points follow the request: {@link RequestSession.open} after the load,
 * {@link RequestSession.setCookie} as the headers go out, {@link RequestSession.commit} as the
 * response ends. Knows the request (for `req.session`, `genid` and HTTPS) but not the response:
 * the middleware binds these to res.
 */
import type { IncomingMessage } from 'node:http'
import createDebug from 'debug'
import {
  clearCookie,
  serializeCookie,
  signSessionId,
  type CookieAttributes,
  type ResolvedCookie,
  type VerifiedId,
  type VerifiedIdCache,
} from './cookie.js'
import { channels, tracedLoad } from './diagnostics.js'
import { SessionEvents } from './events.js'
import { absoluteEnd } from './expiry.js'
import { IdHashCache } from './id-hash-cache.js'
import { BatchQueue } from './keyed-queue.js'
import type { ResolvedOptions } from './options.js'
import { RecentSaves } from './recent-saves.js'
import { renewDue, renewId, RequestCounts } from './renew.js'
import { commitSaves, destroyInStore, writePlan } from './save.js'
import { saveInTick } from './save-now.js'
import { planSave } from './save-plan.js'
import { isSecureRequest } from './secure-request.js'
import { createSession, restoreSession, Session } from './session.js'
import { cookieChanged, resolveCookie } from './session-cookie.js'
import { stateOf, type PendingSave, type SessionHost, type State } from './session-state.js'
import { StoreGuard } from './store-guard.js'
import { protectAtRest } from './protect-at-rest.js'
import {
  loadsNow,
  type LoadOptions,
  type LoadsNow,
  savesNow,
  type SavesNow,
  type SessionRecord,
  type Store,
} from './store.js'
import { reportsLifecycle } from './store-notices.js'

const debug = createDebug('concord-session')

/** The request as the session sees it: Express's and cookie-parser's fields are optional. */
export interface SessionRequest extends IncomingMessage {
  session?: Session | null
  sessionID?: string
  sessionStore?: Store
  originalUrl?: string
  secure?: boolean
  secret?: string
  signedCookies?: Record<string, unknown>
}

/** What every request of one middleware shares. */
export interface Shared {
  readonly options: ResolvedOptions
  readonly batches: BatchQueue<PendingSave>
  readonly guard: StoreGuard
  readonly recent: RecentSaves
  /** Cookie values already verified under the configured secrets. */
  readonly verified: VerifiedIdCache
  /** Requests per id in this process, for `renew.afterRequests`. */
  readonly counts: RequestCounts
  /** The keyed hashes of recent ids, for events and tracing. */
  readonly idHashes: IdHashCache
  /** Delivers lifecycle events; undefined without `onEvent`. */
  readonly events: SessionEvents | undefined
  /** The store the core talks to: `options.store` with hashed ids and encryption at rest. */
  readonly store: Store
  /** The same store when it can answer a load in this tick (an in-process store). */
  readonly loadsNow: (Store & LoadsNow) | undefined
  /** The same store when it can answer a save in this tick. */
  readonly savesNow: (Store & SavesNow) | undefined
}

/**
 * What the requests of one middleware share: the save queue, the store guard, the recent saves.
 *
 * @example
 * ```ts
 * const shared = createShared(resolveOptions(SAFE_DEFAULTS, store), new VerifiedIdCache())
 * ```
 */
export function createShared(options: ResolvedOptions, verified: VerifiedIdCache): Shared {
  const idHashes = new IdHashCache(options.idHashKey)
  const events = options.onEvent && new SessionEvents(options.onEvent, idHashes)
  const store = protectAtRest(options.store, options.atRest, idHashes)
  // Expiries and sign-outs the store sees on its own reach the listener too.
  if (events && reportsLifecycle(store)) store.onLifecycle((notice) => events.fromStore(notice))
  return {
    options,
    batches: new BatchQueue<PendingSave>((_id, saves, queued) => commitSaves(saves, queued)),
    guard: new StoreGuard(options.saveTimeout),
    recent: new RecentSaves(),
    verified,
    counts: new RequestCounts(),
    idHashes,
    events,
    store,
    loadsNow: loadsNow(store) ? store : undefined,
    savesNow: savesNow(store) ? store : undefined,
  }
}

/**
 * One request's session: the host its Session reads the request through, and the owner of its
 * life. One object per request, with no closures, so the hot path allocates nothing more.
 *
 * @example
 * ```ts
 * const life = new RequestSession(req, shared, options.cookie(req), incoming)
 * const loading = life.load(now)
 * await life.open(loading && (await loading), now)
 * // as the headers go out:
 * const setCookie = life.setCookie(res.statusCode)
 * // as the response ends:
 * const saving = life.commit(res.statusCode)
 * ```
 */
export class RequestSession implements SessionHost {
  #secure: boolean | undefined
  /** The session this request started with (req.session may be replaced or unset later). */
  #first: Session | undefined

  constructor(
    readonly req: SessionRequest,
    readonly shared: Shared,
    readonly cookieDefaults: CookieAttributes,
    /** The id the request's cookie carried, verified; null without a valid cookie. */
    readonly incoming: VerifiedId | null,
  ) {}

  get options(): ResolvedOptions {
    return this.shared.options
  }
  get store(): Store {
    return this.shared.store
  }
  get batches(): BatchQueue<PendingSave> {
    return this.shared.batches
  }
  get savesNow(): (Store & SavesNow) | undefined {
    return this.shared.savesNow
  }
  get guard(): StoreGuard {
    return this.shared.guard
  }
  get events(): SessionEvents | undefined {
    return this.shared.events
  }
  get idHashes(): IdHashCache {
    return this.shared.idHashes
  }
  get recent(): RecentSaves {
    return this.shared.recent
  }

  /** Computed once, when a cookie is written or `cookie.secure` is read: Express's is not free. */
  get secure(): boolean {
    return (this.#secure ??= isSecureRequest(this.req, this.options.proxy))
  }

  generateId(): Promise<string> {
    return generateId(this.options, this.req)
  }

  attach(session: Session | undefined): void {
    if (session) {
      this.req.session = session
      if (this.options.requestFields) this.req.sessionID = session.id
    } else {
      delete this.req.session
    }
  }

  /**
   * Loads the cookie's session, touching it in the same store call; null without a cookie.
   * A store that answers in this tick gives the record itself (no promise); any other gives
   * the store's promise as it is: no async frame of its own on the hot path.
   */
  load(now: number): Promise<SessionRecord | null> | SessionRecord | null {
    const { incoming } = this
    if (!incoming) return null
    const { id } = incoming
    // Unobserved, the load builds no tracing closure.
    if (!channels.load.hasSubscribers) {
      const { loadsNow } = this.shared
      if (loadsNow !== undefined) {
        const record = this.guard.loadNow(loadsNow, id, this.#loadOptions(now))
        if (record !== undefined) return record
      }
      return this.#load(id, now)
    }
    return tracedLoad(this.shared.idHashes, id, true, () => this.#load(id, now))
  }

  #load(id: string, now: number): Promise<SessionRecord | null> {
    const options = this.#loadOptions(now)
    return this.guard.call(() => this.shared.store.load(id, options), 'load', id)
  }

  #loadOptions(now: number): LoadOptions {
    const { options } = this
    return {
      touchAt: now,
      absoluteTimeout: options.absoluteTimeout,
      touchAfter: options.touchAfter,
    }
  }

  /**
   * 1. After the load: the stored session, or a fresh one when the id is unknown, put on the
   * request. Returns a promise only when a fresh id has to be generated. Throws a StoreError
   * for a record it cannot read.
   */
  open(record: SessionRecord | null, now: number): Promise<void> | undefined {
    const { incoming } = this
    // An unknown id gets a fresh one, never the client's:
    // https://owasp.org/www-community/attacks/Session_fixation
    if (!record) {
      if (incoming) debug('session %s is unknown or expired: starting a fresh one', incoming.id)
      return this.#openFresh(now)
    }
    // Loaded through the grace window of a renewal: the session lives under its new id.
    const id = record.renewedTo ?? incoming!.id
    const { renew } = this.options
    if (renew !== undefined && renewDue(renew, this.shared.counts, id, record, now))
      return this.#openRenewed(id, record, now)
    this.#start(restoreSession(this, id, record, now))
    return undefined
  }

  /** Opens the session under a new id; the response carries its cookie. */
  async #openRenewed(id: string, record: SessionRecord, now: number): Promise<void> {
    const { graceMs } = this.options.renew!
    const outcome = await renewId(
      this.store,
      id,
      () => this.generateId(),
      graceMs,
      now,
      (fn) => this.guard.call(fn, 'renew', id),
    )
    if (!outcome) return this.#openFresh(now) // destroyed meanwhile
    this.recent.forget(id)
    this.#start(restoreSession(this, outcome.id, record, now))
    if (outcome.renewed) this.renewed(id, outcome.id, record.userId)
  }

  /**
   * Called once a request has renewed its session's id, after the new session is on
   * `req.session`: the place a 'renewed' lifecycle event is emitted from.
   */
  renewed(oldId: string, newId: string, userId: string | undefined): void {
    debug('request renewed session %s as %s', oldId, newId)
    this.events?.renewed(oldId, newId, userId)
  }

  async #openFresh(now: number): Promise<void> {
    this.#start(createSession(this, await this.generateId(), now))
  }

  #start(session: Session): void {
    this.#first = session
    this.attach(session)
    if (this.options.requestFields) this.req.sessionStore = this.options.store
  }

  /**
   * 2. As the headers go out: the Set-Cookie value to add, or undefined for none. Sends the
   * cookie of a new session that will be saved, of a changed one, or with `rolling`; clears it
   * after destroy() or `req.session = null` with `unset: 'destroy'`.
   */
  setCookie(statusCode: number): string | undefined {
    const { options, incoming } = this
    if (statusCode >= 500) return undefined // nothing was saved
    const first = stateOf(this.#first!)
    // Anything but a Session here (null, deleted, or a plain object the app assigned) is unset.
    const current = this.req.session instanceof Session ? this.req.session : undefined
    if (!current) {
      // destroy(), or the app unset req.session with unset: 'destroy': drop the browser's cookie.
      if (incoming && (first.ended || options.unset === 'destroy'))
        return clearCookie(options.name, resolvedCookie(first))
      return undefined
    }
    const state = stateOf(current)
    if (state.ended) {
      // Destroyed elsewhere while this request ran (a logout racing it): never re-issue it.
      return incoming ? clearCookie(options.name, resolvedCookie(state)) : undefined
    }
    let send: boolean
    try {
      send = this.#sendsCookie(current, state)
    } catch {
      return undefined // data that cannot be saved: the save at the end reports it
    }
    if (!send) return undefined
    const cookie = resolvedCookie(state)
    if (cookie.secure && !this.secure) {
      debug('not sending the Secure cookie of %s over plain HTTP (see the proxy option)', state.id)
      return undefined
    }
    // Same id under the first secret: the value the browser sent is already the right one.
    const value =
      incoming?.signed !== undefined && incoming.id === state.id && !incoming.rotated
        ? incoming.signed
        : signSessionId(state.id, options.secrets?.[0] ?? this.req.secret!)
    return serializeCookie(options.name, value, cookie)
  }

  /**
   * 3. As the response ends: saves what the request changed (always with `resave`), or forgets
   * the session after `req.session = null` with `unset: 'destroy'`. Undefined when there is
   * nothing to write, or for a 5xx response. Throws if the data cannot be saved.
   */
  commit(statusCode: number): Promise<void> | undefined {
    if (statusCode >= 500) return undefined
    const current = this.req.session
    if (current instanceof Session) {
      if (stateOf(current).ended) return undefined
      const plan = planSave(current, false)
      // Saved in this tick when the store can: the response then ends without a promise.
      return plan && !saveInTick(current, plan) ? writePlan(current, plan) : undefined
    }
    // req.session was set to null, deleted or replaced by the app, not by destroy().
    const first = stateOf(this.#first!)
    if (this.options.unset === 'destroy' && !first.ended) return forget(first)
    return undefined
  }

  #sendsCookie(current: Session, state: State): boolean {
    const { options, incoming } = this
    if (state.id !== incoming?.id)
      return state.version !== null || planSave(current, false) !== null
    return (
      options.rolling ||
      incoming!.rotated ||
      // A cookie made a browser-session one must reach the browser too, or its old Expires stays.
      (state.changedThisRequest &&
        (cookieChanged(state.cookie) ||
          state.cookie.expires !== null ||
          options.absoluteTimeout !== undefined))
    )
  }
}

/** The cookie's attributes for this response, capped by the absolute timeout. */
function resolvedCookie(state: State): ResolvedCookie {
  const end = absoluteEnd(state.createdAt, state.host.options.absoluteTimeout)
  return resolveCookie(state.cookie, end === Infinity ? undefined : end)
}

/** Forgets the session in the store: `unset: 'destroy'` after `req.session = null`. */
async function forget(state: State): Promise<void> {
  await destroyInStore(state, 'unset')
  if (state.version !== null) state.host.events?.destroyed(state.id, state.savedUserId)
  state.ended = 'destroyed'
}

/** A new id from `genid`, checked like an id from a cookie. */
export async function generateId(options: ResolvedOptions, req: IncomingMessage): Promise<string> {
  const id = await options.genid(req)
  if (!options.isValidId(id)) {
    throw new TypeError(
      `session(): genid returned ${JSON.stringify(id)}; ` +
        'an id must be 1-256 characters of A-Z a-z 0-9 _ - + = .',
    )
  }
  return id
}
