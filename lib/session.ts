/**
 * The Session on `req.session`: the user's data as its own properties, and the methods
 * save, regenerate, destroy, reload and touch, each returning a promise and taking an
 * optional callback. Knows the store but not req or res: what depends on the request
 * comes in through a {@link SessionHost}.
 */
import createDebug from 'debug'
import type { CookieAttributes, ResolvedCookie } from './cookie.js'
import { defineKey, diffData, replayKey, SessionDataError } from './changes.js'
import type { KeyedQueue } from './keyed-queue.js'
import type { ResolvedOptions } from './options.js'
import type { CookieOverrides, SessionChange, SessionRecord, Store } from './store.js'
import { StoreError } from './store.js'

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
  /** Saves of one id run one at a time through this queue. */
  readonly queue: KeyedQueue
  /** The cookie defaults for this request, as configured (`secure` may be `'auto'`). */
  readonly cookieDefaults: CookieAttributes
  /** Whether the request arrived over HTTPS, for `secure: 'auto'`. Read only when needed. */
  readonly secure: boolean
  generateId(): Promise<string>
  /** Puts `session` on the request (after regenerate), or takes it off (after destroy). */
  attach(session: Session | undefined): void
}

const debug = createDebug('concord-session')

/** Attempts at one save before a conflict is reported; each attempt replays onto fresher data. */
const MAX_SAVE_ATTEMPTS = 10
const JITTER_CAP_MS = 50

// Private-field accessors, assigned in the classes' static blocks: module-internal, not API.
let cookieInternals: (cookie: Cookie) => {
  changed: boolean
  overrides: CookieOverrides
  resolve(cap: number | undefined): ResolvedCookie
}
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
  #expires: Date | null
  #domain: string | undefined
  #path: string
  #httpOnly: boolean
  #secure: boolean | 'auto'
  #sameSite: CookieAttributes['sameSite']
  #partitioned: boolean | undefined
  #priority: CookieAttributes['priority']
  #overrides: CookieOverrides
  #changed = false
  #request: { readonly secure: boolean } | undefined

  /**
   * @internal Built by the middleware from the request's defaults and the stored overrides;
   * `request.secure` resolves `secure: 'auto'`, and is read only when asked for.
   */
  constructor(defaults: CookieAttributes, overrides: CookieOverrides = {}, now = Date.now(), request?: { readonly secure: boolean }) {
    this.#request = request
    const merged = { ...defaults, ...overrides }
    this.#overrides = { ...overrides }
    this.#originalMaxAge = 'originalMaxAge' in overrides ? overrides.originalMaxAge ?? null : defaults.maxAge ?? null
    this.#expires = this.#originalMaxAge === null ? null : new Date(now + this.#originalMaxAge)
    this.#domain = merged.domain
    this.#path = merged.path ?? '/'
    this.#httpOnly = merged.httpOnly ?? true
    this.#secure = merged.secure ?? false
    this.#sameSite = merged.sameSite
    this.#partitioned = merged.partitioned
    this.#priority = merged.priority
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
    return this.#expires === null ? null : this.#expires.getTime() - Date.now()
  }
  /** Also takes express-session's other spellings: `false` for none, or a Date to expire at. */
  set maxAge(value: number | null | false | Date) {
    const ms = value === false ? null : value instanceof Date ? Math.max(0, value.getTime() - Date.now()) : value
    if (ms !== null && !(typeof ms === 'number' && Number.isFinite(ms) && ms >= 0)) {
      throw new TypeError(`cookie.maxAge must be a number of ms >= 0 or null, got ${String(value)}`)
    }
    this.#originalMaxAge = ms
    // A Date is kept as given, so a date in the past (expires = new Date(0)) reaches the browser.
    this.#expires = ms === null ? null : value instanceof Date ? value : new Date(Date.now() + ms)
    this.#override('originalMaxAge', ms)
  }

  get expires(): Date | null {
    return this.#expires
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
    this.#expires = this.#originalMaxAge === null ? null : new Date(now + this.#originalMaxAge)
  }

  /** express-session's `cookie.data`: the settings as a plain object. */
  get data(): Record<string, unknown> {
    return {
      originalMaxAge: this.#originalMaxAge,
      expires: this.#expires,
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
    this.#overrides[key] = value
    this.#changed = true
  }

  static {
    cookieInternals = (cookie) => ({
      changed: cookie.#changed,
      overrides: cookie.#overrides,
      resolve(cap: number | undefined): ResolvedCookie {
        let expires = cookie.#expires
        if (cap !== undefined && (expires === null || expires.getTime() > cap)) expires = new Date(cap)
        return {
          expires,
          domain: cookie.#domain,
          path: cookie.#path,
          httpOnly: cookie.#httpOnly,
          secure: cookie.secure === true,
          sameSite: cookie.#sameSite,
          partitioned: cookie.#partitioned,
          priority: cookie.#priority,
        }
      },
    })
  }
}

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
  savedCookie: string
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
  constructor(state: State, data: Record<string, unknown> = {}) {
    this.#state = state
    for (const key of Object.keys(data)) defineKey(this as unknown as Record<string, unknown>, key, data[key])
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
    const opts = typeof options === 'function' ? {} : options ?? {}
    return withCallback(regenerateSession(this, opts.keepData === true), typeof options === 'function' ? options : callback)
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
      throw new TypeError(`setUser(userId): userId must be a non-empty string or null, got ${JSON.stringify(userId)}`)
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
    baseline: {},
    userId: undefined,
    savedUserId: undefined,
    savedCookie: '{}',
    cookie: new Cookie(host.cookieDefaults, {}, now, host),
    changedThisRequest: false,
    ended: undefined,
  })
}

/** A session from a stored record. Corrupt JSON in the record is a StoreError. */
export function restoreSession(host: SessionHost, id: string, record: SessionRecord, now = Date.now()): Session {
  return new Session(
    {
      host,
      id,
      version: record.version,
      createdAt: record.createdAt,
      baseline: record.data,
      userId: record.userId,
      savedUserId: record.userId,
      savedCookie: JSON.stringify(record.cookie),
      cookie: new Cookie(host.cookieDefaults, record.cookie, now, host),
      changedThisRequest: false,
      ended: undefined,
    },
    parseData(id, record.data),
  )
}

/** What the middleware needs to decide about the cookie. */
export interface SessionStatus {
  id: string
  saved: boolean
  changedThisRequest: boolean
  /** The app changed a cookie setting during this request (e.g. maxAge to null). */
  cookieChanged: boolean
  ended: SessionEnd | undefined
  /** A save at the end of this request would write something. */
  wouldSave: boolean
  cookie: ResolvedCookie
}

export function sessionStatus(session: Session): SessionStatus {
  const state = stateOf(session)
  const absolute = state.host.options.absoluteTimeout
  return {
    id: state.id,
    saved: state.version !== null,
    changedThisRequest: state.changedThisRequest,
    cookieChanged: cookieInternals(state.cookie).changed,
    ended: state.ended,
    get wouldSave() {
      return state.ended === undefined && planSave(session, 'end') !== null
    },
    // Resolved only when a cookie is written: most responses write none.
    get cookie() {
      return cookieInternals(state.cookie).resolve(absolute === undefined ? undefined : state.createdAt + absolute)
    },
  }
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
  await callStore(() => state.host.store.destroy(state.id), 'destroy', state.id)
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
  cookie: CookieOverrides
  cookieChanged: boolean
  userChanged: boolean
}

function planSave(session: Session, when: 'end' | 'always'): SavePlan | null {
  const state = stateOf(session)
  const { options } = state.host
  const diff = diffData(session, state.baseline)
  if (diff.size > options.maxSize) {
    throw new SessionDataError(
      `session ${state.id} is ${diff.size} characters of JSON, over maxSize ${options.maxSize}; ` +
        'keep large data elsewhere and store a reference in the session',
      { code: 'ESESSIONTOOLARGE' },
    )
  }
  const cookie = cookieInternals(state.cookie)
  const cookieChanged = cookie.changed && JSON.stringify(cookie.overrides) !== state.savedCookie
  const userChanged = state.userId !== state.savedUserId
  const changed = diff.changed || cookieChanged || userChanged
  const plan = { set: diff.set, unset: diff.unset, texts: diff.texts, cookie: cookie.overrides, cookieChanged, userChanged }
  if (when === 'always' || changed) return plan
  if (state.version === null) return options.saveUninitialized ? plan : null
  return options.resave && !state.savedThisRequest ? plan : null
}

async function writePlan(session: Session, plan: SavePlan): Promise<void> {
  const state = stateOf(session)
  await state.host.queue.run(state.id, () => writeWithReplay(session, plan))
}

async function writeWithReplay(session: Session, plan: SavePlan): Promise<void> {
  const state = stateOf(session)
  const { store, options } = state.host
  const changed = Object.keys(plan.set).length > 0 || plan.unset.length > 0 || plan.cookieChanged || plan.userChanged
  let { set, unset } = plan
  let cookie = plan.cookie
  let userId: string | null = state.userId ?? null
  let createdAt = state.createdAt
  let expectedVersion = state.version
  let merged: Record<string, string> | undefined

  for (let attempt = 1; ; attempt++) {
    const now = Date.now()
    const idleTimeout = state.cookie.originalMaxAge ?? options.idleTimeout
    const deadline = options.absoluteTimeout === undefined ? Infinity : createdAt + options.absoluteTimeout
    if (deadline <= now) {
      // Past its absolute timeout: the session ends rather than being written again.
      if (expectedVersion !== null) await callStore(() => store.destroy(state.id), 'destroy', state.id)
      state.ended = 'gone'
      return
    }
    const change: SessionChange = {
      set, unset, cookie, createdAt, idleTimeout, userId, expectedVersion,
      expiresAt: Math.min(now + idleTimeout, deadline),
    }
    const result = await callStore(() => store.save(state.id, change), 'save', state.id)

    if (result.ok) {
      state.version = result.version
      state.savedCookie = JSON.stringify(cookie)
      state.savedUserId = userId ?? undefined
      state.userId = userId ?? undefined
      state.createdAt = createdAt
      if (changed) state.changedThisRequest = true
      state.savedThisRequest = true
      if (merged) refreshData(session, merged)
      else state.baseline = plan.texts
      return
    }
    if (result.reason === 'gone') {
      debug('session %s was destroyed or expired while this request ran: dropping its save', state.id)
      state.ended = 'gone' // never bring it back
      return
    }
    if (attempt >= MAX_SAVE_ATTEMPTS) {
      throw new StoreError(`session ${state.id}: gave up after ${attempt} conflicting saves`, { code: 'ECONFLICT' })
    }
    if (expectedVersion === null) {
      // The new id is taken (a custom genid repeated itself): never merge into another session.
      debug('new session id %s is taken: generating another', state.id)
      state.id = await state.host.generateId()
      continue
    }
    const current = result.current
    debug('session %s: version %d was saved meanwhile, replaying this request\'s changes (attempt %d)', state.id, current.version, attempt)
    const replayed = replayChanges(state.baseline, plan, current.data)
    set = replayed.set
    merged = replayed.merged
    cookie = plan.cookieChanged ? plan.cookie : current.cookie
    userId = plan.userChanged ? userId : current.userId ?? null
    createdAt = current.createdAt
    expectedVersion = current.version
    if (attempt >= 3) await sleep(Math.random() * Math.min(JITTER_CAP_MS, 2 ** attempt))
  }
}

/** This request's changes replayed onto `theirs`; `merged` is every key's text after the write. */
function replayChanges(
  loaded: Record<string, string>,
  plan: SavePlan,
  theirs: Record<string, string>,
): { set: Record<string, string>; merged: Record<string, string> } {
  const set: Record<string, string> = {}
  for (const key of Object.keys(plan.set)) set[key] = replayKey(loaded[key], plan.set[key]!, theirs[key])
  const merged: Record<string, string> = { ...theirs, ...set }
  for (const key of plan.unset) delete merged[key]
  return { set, merged }
}

function refreshData(session: Session, texts: Record<string, string>): void {
  const state = stateOf(session)
  const target = session as unknown as Record<string, unknown>
  // `cookie` is the session's own (the express-session drop-in shows it among the keys), not data.
  for (const key of Object.keys(session)) if (!(key in texts) && key !== 'cookie') delete target[key]
  const data = parseData(state.id, texts)
  for (const key of Object.keys(data)) defineKey(target, key, data[key])
  state.baseline = texts
}

async function saveSession(session: Session, when: 'always'): Promise<void> {
  const state = stateOf(session)
  if (state.ended) throw new Error(`session ${state.id} was ${state.ended === 'gone' ? 'destroyed elsewhere' : 'destroyed'}; it cannot be saved`)
  const plan = planSave(session, when)
  if (plan) await writePlan(session, plan)
  if (stateOf(session).ended === 'gone') throw new Error(`session ${state.id} was destroyed elsewhere; the save was dropped`)
}

async function regenerateSession(session: Session, keepData: boolean): Promise<void> {
  const state = stateOf(session)
  const { host } = state
  if (state.version !== null && !state.ended) await callStore(() => host.store.destroy(state.id), 'destroy', state.id)
  state.ended = 'destroyed'
  const next = createSession(host, await host.generateId())
  if (keepData) {
    const nextState = stateOf(next)
    const source = session as unknown as Record<string, unknown>
    for (const key of Object.keys(session)) if (key !== 'cookie') defineKey(next as unknown as Record<string, unknown>, key, source[key])
    nextState.userId = state.userId
    nextState.cookie = new Cookie(host.cookieDefaults, cookieInternals(state.cookie).overrides, Date.now(), host)
  }
  host.attach(next)
}

async function destroySession(session: Session): Promise<void> {
  const state = stateOf(session)
  if (!state.ended) await callStore(() => state.host.store.destroy(state.id), 'destroy', state.id)
  state.ended = 'destroyed'
  state.host.attach(undefined)
}

async function reloadSession(session: Session): Promise<void> {
  const state = stateOf(session)
  const record = state.version === null || state.ended ? null : await callStore(() => state.host.store.load(state.id), 'load', state.id)
  if (!record) throw Object.assign(new Error(`session ${state.id} cannot be reloaded: it is not in the store (new, expired or destroyed)`), { code: 'ESESSIONGONE' })
  state.version = record.version
  state.userId = state.savedUserId = record.userId
  state.savedCookie = JSON.stringify(record.cookie)
  state.cookie = new Cookie(state.host.cookieDefaults, record.cookie, Date.now(), state.host)
  refreshData(session, record.data)
}

async function touchSession(session: Session): Promise<void> {
  const state = stateOf(session)
  const now = Date.now()
  state.cookie.resetMaxAge(now)
  if (state.version === null || state.ended) return
  const { options } = state.host
  const idle = now + (state.cookie.originalMaxAge ?? options.idleTimeout)
  const expiresAt = options.absoluteTimeout === undefined ? idle : Math.min(idle, state.createdAt + options.absoluteTimeout)
  await callStore(() => state.host.store.touch(state.id, expiresAt), 'touch', state.id)
}

function parseData(id: string, texts: Record<string, string>): Record<string, unknown> {
  const data: Record<string, unknown> = {}
  for (const key of Object.keys(texts)) {
    if (key === '__proto__') continue // never let stored data reach a prototype
    try {
      data[key] = JSON.parse(texts[key]!)
    } catch (cause) {
      throw new StoreError(`session ${id}: stored key "${key}" is not valid JSON`, { cause, code: 'ECORRUPT' })
    }
  }
  return data
}

/** Calls the store, turning anything but a StoreError into one: stores fail closed with 503. */
export async function callStore<T>(call: () => Promise<T>, what: string, id: string): Promise<T> {
  try {
    return await call()
  } catch (err) {
    if (err instanceof StoreError) throw err
    throw new StoreError(`session store ${what} failed for session ${id}: ${(err as Error)?.message ?? String(err)}`, { cause: err })
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
