/**
 * The Session on `req.session`: the user's data as its own properties, and the methods
 * save, regenerate, destroy, reload and touch, each returning a promise and taking an
 * optional callback. Knows the store but not req or res: what depends on the request
 * comes in through a {@link SessionHost}.
 */
import createDebug from 'debug'
import type { CookieAttributes, ResolvedCookie } from './cookie.js'
import { defineKey, diffData, ReplayOnto, SessionDataError, unchangedSize } from './changes.js'
import type { BatchQueue } from './keyed-queue.js'
import type { ResolvedOptions } from './options.js'
import type { RecentSaves } from './recent-saves.js'
import { callStore, type StoreGuard } from './store-guard.js'
import type { CookieOverrides, SessionChange, SessionRecord, Store } from './store.js'
import { StoreError } from './store.js'

export { callStore }

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

/** What a session needs from the request it lives in. The middleware provides it. */
export interface SessionHost {
  readonly store: Store
  readonly options: ResolvedOptions
  /** Saves of one id run one batch at a time through this queue (see commitSaves). */
  readonly batches: BatchQueue<PendingSave>
  /** Every store call goes through it: the save deadline, fail fast while the store is down. */
  readonly guard: StoreGuard
  /** This process's last saves, for replaying onto them without a store conflict. */
  readonly recent: RecentSaves
  /** The cookie defaults for this request, as configured (`secure` may be `'auto'`). */
  readonly cookieDefaults: CookieAttributes
  /** Whether the request arrived over HTTPS, for `secure: 'auto'`. Read only when needed. */
  readonly secure: boolean
  generateId(): Promise<string>
  /** Puts `session` on the request (after regenerate), or takes it off (after destroy). */
  attach(session: Session | undefined): void
}

const debug = createDebug('concord-session')

/**
 * Attempts at one save before a conflict is reported; each attempt replays onto fresher data.
 * Only other processes' writes conflict (this process's own are replayed onto in memory), and
 * the save's deadline bounds the attempts in time as well.
 */
const MAX_SAVE_ATTEMPTS = 30
/** Backoff between conflicting attempts: full jitter, doubling from this up to the cap. */
const BACKOFF_BASE_MS = 2
const BACKOFF_CAP_MS = 100

// Private-field accessors, assigned in the classes' static blocks: module-internal, not API.
let cookieChanged: (cookie: Cookie) => boolean
let cookieOverrides: (cookie: Cookie) => CookieOverrides
let resolveCookie: (cookie: Cookie, cap: number | undefined) => ResolvedCookie
let stateOf: (session: Session) => State

/**
 * The cookie settings of one session, in express-session's Cookie shape. Changing one
 * (`req.session.cookie.maxAge = 30 * 86_400_000`) is saved with the session and applies to
 * that session only.
 *
 * @example
 * ```ts
 * if (req.body.remember) req.session.cookie.maxAge = 30 * 24 * 3600 * 1000
 * ```
 */
export class Cookie {
  #originalMaxAge: number | null
  /** Epoch ms; the Date that `expires` returns is made only when asked for. */
  #expiresAt: number | null
  #expiresDate: Date | null = null
  #domain: string | undefined
  #path: string
  #httpOnly: boolean
  #secure: boolean | 'auto'
  #sameSite: CookieAttributes['sameSite']
  #partitioned: boolean | undefined
  #priority: CookieAttributes['priority']
  /** Shared with the record it came from until the first change, then this cookie's own copy. */
  #overrides: CookieOverrides
  #changed = false
  #request: { readonly secure: boolean } | undefined

  /**
   * @internal Built by the middleware from the request's defaults and the stored overrides;
   * `request.secure` resolves `secure: 'auto'`, and is read only when asked for.
   */
  constructor(
    defaults: CookieAttributes,
    overrides: CookieOverrides = NO_OVERRIDES,
    now = Date.now(),
    request?: { readonly secure: boolean },
  ) {
    this.#request = request
    this.#overrides = overrides
    const o = overrides
    // `in`, not `??`: an override set to undefined (domain = undefined) still wins over the default.
    this.#originalMaxAge =
      'originalMaxAge' in o ? (o.originalMaxAge ?? null) : (defaults.maxAge ?? null)
    this.#expiresAt = this.#originalMaxAge === null ? null : now + this.#originalMaxAge
    this.#domain = 'domain' in o ? o.domain : defaults.domain
    this.#path = ('path' in o ? o.path : defaults.path) ?? '/'
    this.#httpOnly = ('httpOnly' in o ? o.httpOnly : defaults.httpOnly) ?? true
    this.#secure = ('secure' in o ? o.secure : defaults.secure) ?? false
    this.#sameSite = 'sameSite' in o ? o.sameSite : defaults.sameSite
    this.#partitioned = 'partitioned' in o ? o.partitioned : defaults.partitioned
    this.#priority = 'priority' in o ? o.priority : defaults.priority
  }

  /** The cookie's lifetime in ms as set, or `null` for a browser-session cookie. */
  get originalMaxAge(): number | null {
    return this.#originalMaxAge
  }
  set originalMaxAge(ms: number | null) {
    this.maxAge = ms
  }

  /** Milliseconds left until the cookie expires, or `null` for a browser-session cookie. */
  get maxAge(): number | null {
    return this.#expiresAt === null ? null : this.#expiresAt - Date.now()
  }
  /** Also takes express-session's other spellings: `false` for none, or a Date to expire at. */
  set maxAge(value: number | null | false | Date) {
    const ms =
      value === false
        ? null
        : value instanceof Date
          ? Math.max(0, value.getTime() - Date.now())
          : value
    if (ms !== null && !(typeof ms === 'number' && Number.isFinite(ms) && ms >= 0)) {
      throw new TypeError(`cookie.maxAge must be a number of ms >= 0 or null, got ${String(value)}`)
    }
    this.#originalMaxAge = ms
    // A Date is kept as given, so a date in the past (expires = new Date(0)) reaches the browser.
    this.#expiresAt = ms === null ? null : value instanceof Date ? value.getTime() : Date.now() + ms
    if (value instanceof Date) this.#expiresDate = value // `expires` returns the very Date it was given
    this.#override('originalMaxAge', ms)
  }

  get expires(): Date | null {
    if (this.#expiresAt === null) return null
    if (this.#expiresDate === null || this.#expiresDate.getTime() !== this.#expiresAt)
      this.#expiresDate = new Date(this.#expiresAt)
    return this.#expiresDate
  }
  /** `null` (or express-session's `false`) makes a browser-session cookie. */
  set expires(date: Date | null | false) {
    this.maxAge = date === null || date === false ? null : date
  }

  get domain(): string | undefined {
    return this.#domain
  }
  set domain(value: string | undefined) {
    this.#domain = value
    this.#override('domain', value)
  }

  get path(): string {
    return this.#path
  }
  set path(value: string) {
    this.#path = value
    this.#override('path', value)
  }

  get httpOnly(): boolean {
    return this.#httpOnly
  }
  set httpOnly(value: boolean) {
    this.#httpOnly = value
    this.#override('httpOnly', value)
  }

  /** With `'auto'`, whether this request came over HTTPS. */
  get secure(): boolean | 'auto' {
    return this.#secure === 'auto' && this.#request ? this.#request.secure : this.#secure
  }
  set secure(value: boolean | 'auto') {
    this.#secure = value
    this.#override('secure', value)
  }

  get sameSite(): CookieAttributes['sameSite'] {
    return this.#sameSite
  }
  set sameSite(value: CookieAttributes['sameSite']) {
    this.#sameSite = value
    this.#override('sameSite', value)
  }

  get partitioned(): boolean | undefined {
    return this.#partitioned
  }
  set partitioned(value: boolean | undefined) {
    this.#partitioned = value
    this.#override('partitioned', value)
  }

  get priority(): CookieAttributes['priority'] {
    return this.#priority
  }
  set priority(value: CookieAttributes['priority']) {
    this.#priority = value
    this.#override('priority', value)
  }

  /** Restarts the lifetime: expires = now + originalMaxAge. Not a change to save by itself. */
  resetMaxAge(now = Date.now()): void {
    this.#expiresAt = this.#originalMaxAge === null ? null : now + this.#originalMaxAge
  }

  /** express-session's `cookie.data`: the settings as a plain object. */
  get data(): Record<string, unknown> {
    return {
      originalMaxAge: this.#originalMaxAge,
      expires: this.expires,
      secure: this.#secure,
      httpOnly: this.#httpOnly,
      domain: this.#domain,
      path: this.#path,
      sameSite: this.#sameSite,
      partitioned: this.#partitioned,
      priority: this.#priority,
    }
  }

  toJSON(): Record<string, unknown> {
    return this.data
  }

  #override<K extends keyof CookieOverrides>(key: K, value: CookieOverrides[K]): void {
    // Setting what is already stored (expires = null on every request) changes nothing.
    if (Object.hasOwn(this.#overrides, key) && this.#overrides[key] === value) return
    if (!this.#changed) this.#overrides = { ...this.#overrides } // copy on write: the record's stays as loaded
    this.#overrides[key] = value
    this.#changed = true
  }

  static {
    cookieChanged = (cookie) => cookie.#changed
    cookieOverrides = (cookie) => cookie.#overrides
    resolveCookie = (cookie, cap) => {
      let expiresAt = cookie.#expiresAt
      if (cap !== undefined && (expiresAt === null || expiresAt > cap)) expiresAt = cap
      return {
        expires: expiresAt === null ? null : new Date(expiresAt),
        domain: cookie.#domain,
        path: cookie.#path,
        httpOnly: cookie.#httpOnly,
        secure: cookie.secure === true,
        sameSite: cookie.#sameSite,
        partitioned: cookie.#partitioned,
        priority: cookie.#priority,
      }
    }
  }
}

const NO_OVERRIDES: CookieOverrides = Object.freeze({})

/** How this request's session ended, if it did. */
export type SessionEnd = 'destroyed' | 'gone'

interface State {
  host: SessionHost
  id: string
  /** `null` until the session is first saved. */
  version: number | null
  createdAt: number
  /** Each key's JSON text as last loaded or saved: what changes are measured against. */
  baseline: Record<string, string>
  userId: string | undefined
  savedUserId: string | undefined
  /** The cookie overrides as last loaded or saved (never changed in place). */
  savedCookie: CookieOverrides
  cookie: Cookie
  /** Saved with a change during this request (decides whether the cookie is re-sent). */
  changedThisRequest: boolean
  /** Saved during this request: `resave` has nothing left to do unless something changed since. */
  savedThisRequest?: boolean
  ended: SessionEnd | undefined
}

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

  /** The session id (also `req.sessionID`). */
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
    return withCallback(saveSession(this, 'always'), callback)
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
    stateOf = (session) => session.#state
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
  const absoluteExpiresAt = absoluteTimeout === undefined ? null : state.createdAt + absoluteTimeout
  const idle = now + (state.cookie.originalMaxAge ?? idleTimeout)
  return {
    id: state.id,
    createdAt: state.createdAt,
    idleExpiresAt: absoluteExpiresAt === null ? idle : Math.min(idle, absoluteExpiresAt),
    absoluteExpiresAt,
    isNew: state.version === null,
    userId: state.userId,
  }
}

// ---------------------------------------------------------------------------------------------
// Used by the middleware.

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
    changedThisRequest: false,
    ended: undefined,
  })
  parseOnto(session as unknown as Record<string, unknown>, id, record.data)
  return session
}

/** What the middleware reads of a session's state to decide about the cookie. */
export interface SessionView {
  readonly id: string
  /** `null` until the session is first saved. */
  readonly version: number | null
  /** Saved with a change during this request. */
  readonly changedThisRequest: boolean
  readonly ended: SessionEnd | undefined
}

/** The session's bookkeeping, read-only and without a copy. */
export function viewOf(session: Session): SessionView {
  return stateOf(session)
}

/** Whether the app changed a cookie setting during this request (e.g. maxAge to null). */
export function cookieChangedOf(session: Session): boolean {
  return cookieChanged(stateOf(session).cookie)
}

/** Whether a save at the end of this request would write something. */
export function wouldSave(session: Session): boolean {
  return stateOf(session).ended === undefined && planSave(session, 'end') !== null
}

/** The cookie's attributes for this response, capped by the absolute timeout. */
export function resolvedCookieOf(session: Session): ResolvedCookie {
  const state = stateOf(session)
  const absolute = state.host.options.absoluteTimeout
  return resolveCookie(
    state.cookie,
    absolute === undefined ? undefined : state.createdAt + absolute,
  )
}

/** Saves what the request changed, if anything (and always with `resave`). */
export function commitSession(session: Session): Promise<void> | undefined {
  const state = stateOf(session)
  if (state.ended) return undefined
  const plan = planSave(session, 'end')
  return plan ? writePlan(session, plan) : undefined
}

/** Forgets the session in the store: `unset: 'destroy'` after `req.session = null`. */
export async function endSession(session: Session): Promise<void> {
  const state = stateOf(session)
  if (state.ended) return
  await destroyInStore(state)
  state.ended = 'destroyed'
}

export function sessionEnded(session: Session): SessionEnd | undefined {
  return stateOf(session).ended
}

// ---------------------------------------------------------------------------------------------

interface SavePlan {
  set: Record<string, string>
  unset: string[]
  texts: Record<string, string>
  size: number
  cookie: CookieOverrides
  cookieChanged: boolean
  userChanged: boolean
}

const NO_TEXTS: Record<string, string> = Object.freeze({}) as Record<string, string>
const NO_KEYS: string[] = Object.freeze([]) as unknown as string[]

/** What a save would write, or null when there is nothing to write (no object is built then). */
function planSave(session: Session, when: 'end' | 'always'): SavePlan | null {
  const state = stateOf(session)
  const { options } = state.host
  const cookie = state.cookie
  const cookieDiffers =
    cookieChanged(cookie) &&
    JSON.stringify(cookieOverrides(cookie)) !== JSON.stringify(state.savedCookie)
  const userChanged = state.userId !== state.savedUserId
  const unchanged = unchangedSize(session, state.baseline)
  if (unchanged >= 0) {
    checkSize(state, unchanged)
    if (
      !cookieDiffers &&
      !userChanged &&
      when !== 'always' &&
      !(state.version === null
        ? options.saveUninitialized
        : options.resave && !state.savedThisRequest)
    ) {
      return null
    }
    return {
      set: NO_TEXTS,
      unset: NO_KEYS,
      texts: state.baseline,
      size: unchanged,
      cookie: cookieOverrides(cookie),
      cookieChanged: cookieDiffers,
      userChanged,
    }
  }
  const diff = diffData(session, state.baseline)
  checkSize(state, diff.size)
  return {
    set: diff.set,
    unset: diff.unset,
    texts: diff.texts,
    size: diff.size,
    cookie: cookieOverrides(cookie),
    cookieChanged: cookieDiffers,
    userChanged,
  }
}

function checkSize(state: State, size: number): void {
  if (size <= state.host.options.maxSize) return
  throw new SessionDataError(
    `session ${state.id} is ${size} characters of JSON, over maxSize ${state.host.options.maxSize}; ` +
      'keep large data elsewhere and store a reference in the session',
    { code: 'ESESSIONTOOLARGE' },
  )
}

function writePlan(session: Session, plan: SavePlan): Promise<void> {
  const state = stateOf(session)
  return new Promise<void>((resolve, reject) => {
    state.host.batches.add(state.id, { session, plan, resolve, reject })
  })
}

/** One save waiting its turn. */
export interface PendingSave {
  session: Session
  plan: SavePlan
  resolve(): void
  reject(err: unknown): void
}

/** A stored state this process knows exactly: loaded, saved by it, or returned in a conflict. */
interface Known {
  /** `null` for a session not saved yet. */
  version: number | null
  data: Record<string, string>
  cookie: CookieOverrides
  userId?: string | undefined
  createdAt: number
}

function knownOf(state: State): Known {
  return {
    version: state.version,
    data: state.baseline,
    cookie: state.savedCookie,
    userId: state.savedUserId,
    createdAt: state.createdAt,
  }
}

/**
 * Writes the saves of one session that queued up while its previous write ran, as one store
 * write: each request's changes are replayed, in arrival order, onto the newest state this
 * process knows, so 50 concurrent requests on one session cost a handful of store round trips
 * rather than 50, and none of them meets another's write as a conflict. Each request's own
 * deadline still holds, and each learns the outcome of the write that carried its changes.
 */
export function commitSaves(saves: PendingSave[], queued: boolean): Promise<void> {
  // A new session (created by one request) is written on its own: its id may have to change.
  if (saves.length > 1 && saves.some((save) => stateOf(save.session).version === null))
    return settleEach(saves, queued)
  return settle(saves, queued)
}

async function settleEach(saves: PendingSave[], queued: boolean): Promise<void> {
  for (const save of saves) await settle([save], queued)
}

async function settle(saves: PendingSave[], queued: boolean): Promise<void> {
  try {
    await writeSaves(saves, queued)
  } catch (err) {
    for (const save of saves) save.reject(err)
    return
  }
  for (const save of saves) save.resolve()
}

function notSavedInTime(state: State): StoreError {
  return new StoreError(
    `session ${state.id} was not saved within saveTimeout (${state.host.options.saveTimeout} ms); nothing was written`,
    { code: 'ETIMEDOUT' },
  )
}

async function writeSaves(saves: PendingSave[], queued: boolean): Promise<void> {
  const first = stateOf(saves[0]!.session)
  const { store, options, guard, recent } = first.host
  // The store refuses the write after this, so a request answered "not saved" never is.
  const deadline = Date.now() + options.saveTimeout

  // Start from the newest state known: this process's own last save, or what a request loaded.
  let newest = first
  for (const save of saves) {
    const state = stateOf(save.session)
    if (state.version !== null && state.version > newest.version!) newest = state
  }
  let base = knownOf(newest)
  if (base.version !== null) {
    const mine = recent.newerThan(first.id, base.version)
    if (mine) base = mine
  }

  for (let attempt = 1; ; attempt++) {
    const now = Date.now()
    if (now >= deadline) throw notSavedInTime(first)
    const { version: expectedVersion, createdAt } = base

    // Every request's changes, in arrival order, onto `base`.
    let data = base.data
    let set: Record<string, string> | undefined
    let unset: string[] | undefined
    let cookie = base.cookie
    let userId = base.userId ?? null
    let cookieFrom = stateOf(saves[saves.length - 1]!.session)
    let replay: ReplayOnto | undefined
    for (const save of saves) {
      const state = stateOf(save.session)
      const { plan } = save
      if (replay === undefined && state.baseline === data) {
        // Nothing landed since this request loaded: its own result stands as it is.
        data = plan.texts
        if (saves.length === 1) {
          set = plan.set
          unset = plan.unset
        }
        cookie = plan.cookie
        userId = state.userId ?? null
        cookieFrom = state
      } else {
        replay ??= new ReplayOnto(data)
        replay.apply(state.baseline, plan.set, plan.unset)
      }
      if (plan.cookieChanged) {
        cookie = plan.cookie
        cookieFrom = state
      }
      if (plan.userChanged) userId = state.userId ?? null
    }
    if (replay !== undefined) data = replay.texts()
    if (expectedVersion === null) {
      set = data // a new session writes every key
      unset = NO_KEYS
    } else if (set === undefined || unset === undefined) {
      ;[set, unset] = diffTexts(base.data, data)
    }

    const idleTimeout = cookieFrom.cookie.originalMaxAge ?? options.idleTimeout
    const endsAt =
      options.absoluteTimeout === undefined ? Infinity : createdAt + options.absoluteTimeout
    if (endsAt <= now) {
      // Past its absolute timeout: the session ends rather than being written again.
      if (expectedVersion !== null) await destroyInStore(first)
      for (const save of saves) stateOf(save.session).ended = 'gone'
      return
    }
    const change: SessionChange = {
      set,
      unset,
      cookie,
      createdAt,
      idleTimeout,
      userId,
      expectedVersion,
      expiresAt: Math.min(now + idleTimeout, endsAt),
      deadline,
    }
    const id = first.id
    const result = await guard.call(() => store.save(id, change), 'save', id, queued)

    if (result.ok) {
      for (const save of saves) {
        const state = stateOf(save.session)
        const { plan } = save
        state.version = result.version
        state.savedCookie = cookie
        state.savedUserId = state.userId = userId ?? undefined
        state.createdAt = createdAt
        state.savedThisRequest = true
        if (
          plan.set !== NO_TEXTS ||
          plan.unset.length > 0 ||
          plan.cookieChanged ||
          plan.userChanged
        )
          state.changedThisRequest = true
        if (data === plan.texts) state.baseline = data
        else refreshData(save.session, data, plan.texts)
      }
      recent.remember(id, {
        version: result.version,
        data,
        cookie,
        userId: userId ?? undefined,
        createdAt,
        size: saves[saves.length - 1]!.plan.size,
      })
      return
    }
    if (result.reason === 'gone') {
      debug('session %s was destroyed or expired while this request ran: dropping its save', id)
      recent.forget(id)
      for (const save of saves) stateOf(save.session).ended = 'gone' // never bring it back
      return
    }
    if (attempt >= MAX_SAVE_ATTEMPTS) {
      throw new StoreError(`session ${id}: gave up after ${attempt} conflicting saves`, {
        code: 'ECONFLICT',
      })
    }
    if (expectedVersion === null) {
      // The new id is taken (a custom genid repeated itself): never merge into another session.
      debug('new session id %s is taken: generating another', id)
      first.id = await first.host.generateId()
      continue
    }
    debug(
      "session %s: version %d was saved meanwhile, replaying this request's changes (attempt %d)",
      id,
      result.current.version,
      attempt,
    )
    base = result.current
    // Another process is writing this session too: back off with full jitter, so two writers
    // that keep meeting drift apart, but never past the deadline.
    if (attempt >= 2)
      await sleep(
        Math.min(
          Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt),
          Math.max(0, deadline - Date.now()),
        ),
      )
  }
}

/** The keys to write and to delete to turn `before` into `after`. */
function diffTexts(
  before: Record<string, string>,
  after: Record<string, string>,
): [Record<string, string>, string[]] {
  const set: Record<string, string> = {}
  for (const key of Object.keys(after))
    if (!Object.hasOwn(before, key) || before[key] !== after[key]) defineKey(set, key, after[key]!)
  const unset: string[] = []
  for (const key of Object.keys(before)) if (!Object.hasOwn(after, key)) unset.push(key)
  return [set, unset]
}

/**
 * Makes the session's data `texts`. With `current` (what the session's keys serialized to when
 * the save was planned), keys whose text did not change are left as they are, not parsed again.
 */
function refreshData(
  session: Session,
  texts: Record<string, string>,
  current?: Record<string, string>,
): void {
  const state = stateOf(session)
  const target = session as unknown as Record<string, unknown>
  // `cookie` is the session's own (the express-session drop-in shows it among the keys), not data.
  for (const key of Object.keys(session))
    if (!Object.hasOwn(texts, key) && key !== 'cookie') delete target[key]
  if (current === undefined) {
    parseOnto(target, state.id, texts)
  } else {
    for (const key of Object.keys(texts)) {
      if (key === '__proto__' || (Object.hasOwn(current, key) && current[key] === texts[key]))
        continue
      parseOne(target, state.id, key, texts[key]!)
    }
  }
  state.baseline = texts
}

async function saveSession(session: Session, when: 'always'): Promise<void> {
  const state = stateOf(session)
  if (state.ended)
    throw new Error(
      `session ${state.id} was ${state.ended === 'gone' ? 'destroyed elsewhere' : 'destroyed'}; it cannot be saved`,
    )
  const plan = planSave(session, when)
  if (plan) await writePlan(session, plan)
  if (stateOf(session).ended === 'gone')
    throw new Error(`session ${state.id} was destroyed elsewhere; the save was dropped`)
}

async function regenerateSession(session: Session, keepData: boolean): Promise<void> {
  const state = stateOf(session)
  const { host } = state
  if (state.version !== null && !state.ended) await destroyInStore(state)
  state.ended = 'destroyed'
  const next = createSession(host, await host.generateId())
  if (keepData) {
    const nextState = stateOf(next)
    const source = session as unknown as Record<string, unknown>
    for (const key of Object.keys(session))
      if (key !== 'cookie') defineKey(next as unknown as Record<string, unknown>, key, source[key])
    nextState.userId = state.userId
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
  if (!state.ended) await destroyInStore(state)
  state.ended = 'destroyed'
  state.host.attach(undefined)
}

function destroyInStore(state: State): Promise<void> {
  const { host, id } = state
  host.recent.forget(id)
  return host.guard.call(() => host.store.destroy(id), 'destroy', id)
}

async function reloadSession(session: Session): Promise<void> {
  const state = stateOf(session)
  const { host, id } = state
  const record =
    state.version === null || state.ended
      ? null
      : await host.guard.call(() => host.store.load(id), 'load', id)
  if (!record)
    throw Object.assign(
      new Error(
        `session ${state.id} cannot be reloaded: it is not in the store (new, expired or destroyed)`,
      ),
      { code: 'ESESSIONGONE' },
    )
  state.version = record.version
  state.userId = state.savedUserId = record.userId
  state.savedCookie = record.cookie
  state.cookie = new Cookie(state.host.cookieDefaults, record.cookie, Date.now(), state.host)
  refreshData(session, record.data)
}

async function touchSession(session: Session): Promise<void> {
  const state = stateOf(session)
  const now = Date.now()
  state.cookie.resetMaxAge(now)
  if (state.version === null || state.ended) return
  const { options, guard, store } = state.host
  const idle = now + (state.cookie.originalMaxAge ?? options.idleTimeout)
  const expiresAt =
    options.absoluteTimeout === undefined
      ? idle
      : Math.min(idle, state.createdAt + options.absoluteTimeout)
  const id = state.id
  await guard.call(() => store.touch(id, expiresAt), 'touch', id)
}

/** Parses each key's JSON text onto `target`. */
function parseOnto(
  target: Record<string, unknown>,
  id: string,
  texts: Record<string, string>,
): void {
  for (const key in texts) {
    if (!Object.hasOwn(texts, key) || key === '__proto__') continue // never let stored data reach a prototype
    parseOne(target, id, key, texts[key]!)
  }
}

function parseOne(target: Record<string, unknown>, id: string, key: string, text: string): void {
  try {
    target[key] = JSON.parse(text)
  } catch (cause) {
    throw new StoreError(`session ${id}: stored key "${key}" is not valid JSON`, {
      cause,
      code: 'ECORRUPT',
    })
  }
}

function withCallback(promise: Promise<void>, callback: Callback | undefined): Promise<void> {
  if (!callback) return promise
  // With a callback the error goes there, so the returned promise must not reject unhandled.
  return promise.then(
    () => callback(),
    (err: Error) => callback(err),
  )
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

declare global {
  namespace Express {
    interface Request {
      session: Session & Partial<SessionData>
      sessionID: string
      sessionStore: Store
    }
  }
}
