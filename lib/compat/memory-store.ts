/**
 * express-session's MemoryStore, callback API and all (`get`, `set`, `destroy`, `touch`, `all`,
 * `length`, `clear`), without its leak: every session expires, and a timer sweeps the
 * expired ones. The drop-in's default store.
 */
import { rejectUnknownKeys, requirePositive } from '../check-options.js'
import { warnInProduction } from '../production-warning.js'
import { ONE_DAY_MS } from '../time.js'
import { Store } from './store-base.js'
import type { NodeCallback as Callback } from './callback.js'

export interface ExpressSessionMemoryStoreOptions {
  /**
   * Idle lifetime in ms of a session whose cookie has no expiry (express-session keeps those
   * forever). Default 24 h.
   */
  ttl?: number
  /** How often in ms expired sessions are swept. Default 60 000. */
  checkPeriod?: number
}

interface Entry {
  json: string
  expiresAt: number
}

/**
 * In-process sessions for development and tests, with express-session's callback API.
 * One process only: use a shared store (Redis, file) when you run several.
 *
 * @example
 * ```ts
 * import session, { MemoryStore } from 'concord-session/express-session'
 * const store = new MemoryStore()
 * app.use(session({ secret, store }))
 * store.length((err, n) => console.log(`${n} sessions`))
 * ```
 */
export class ExpressSessionMemoryStore extends Store {
  readonly #sessions = new Map<string, Entry>()
  readonly #ttl: number
  readonly #timer: NodeJS.Timeout

  constructor(options: ExpressSessionMemoryStoreOptions = {}) {
    super()
    rejectUnknownKeys('MemoryStore', options ?? {}, ['ttl', 'checkPeriod'])
    warnInProduction('MemoryStore')
    const { ttl = ONE_DAY_MS, checkPeriod = 60_000 } = options
    for (const [name, value] of [
      ['ttl', ttl],
      ['checkPeriod', checkPeriod],
    ] as const) {
      requirePositive('MemoryStore', name, value, 'ms')
    }
    this.#ttl = ttl
    this.#timer = setInterval(() => this.#sweep(Date.now()), checkPeriod)
    this.#timer.unref()
  }

  get(sid: string, callback: Callback): void {
    const entry = this.#live(sid, Date.now())
    setImmediate(callback, null, entry ? JSON.parse(entry.json) : undefined)
  }

  set(sid: string, session: object, callback?: Callback): void {
    let json: string
    try {
      json = JSON.stringify(session)
    } catch (err) {
      if (callback) setImmediate(callback, err)
      return
    }
    this.#sessions.set(sid, { json, expiresAt: this.#expiry(session) })
    if (callback) setImmediate(callback)
  }

  /** Replaces the stored cookie with `session.cookie`, which restarts the session's lifetime. */
  touch(sid: string, session: { cookie?: unknown }, callback?: Callback): void {
    const entry = this.#live(sid, Date.now())
    if (entry) {
      const stored = JSON.parse(entry.json) as Record<string, unknown>
      stored.cookie = session.cookie
      this.#sessions.set(sid, { json: JSON.stringify(stored), expiresAt: this.#expiry(session) })
    }
    if (callback) setImmediate(callback)
  }

  destroy(sid: string, callback?: Callback): void {
    this.#sessions.delete(sid)
    if (callback) setImmediate(callback)
  }

  /** Every live session, keyed by id. */
  all(callback: Callback): void {
    const now = Date.now()
    this.#sweep(now)
    const sessions: Record<string, unknown> = Object.create(null)
    for (const [sid, entry] of this.#sessions) sessions[sid] = JSON.parse(entry.json)
    setImmediate(callback, null, sessions)
  }

  length(callback: Callback): void {
    this.#sweep(Date.now())
    setImmediate(callback, null, this.#sessions.size)
  }

  clear(callback?: Callback): void {
    this.#sessions.clear()
    if (callback) setImmediate(callback)
  }

  /** Stops the sweep timer (it never keeps a process alive, but tests like a clean exit). */
  close(): void {
    clearInterval(this.#timer)
  }

  #live(sid: string, now: number): Entry | undefined {
    const entry = this.#sessions.get(sid)
    if (entry && entry.expiresAt <= now) {
      this.#sessions.delete(sid)
      return undefined
    }
    return entry
  }

  #sweep(now: number): void {
    for (const [sid, entry] of this.#sessions)
      if (entry.expiresAt <= now) this.#sessions.delete(sid)
  }

  /** The cookie's expiry, as express-session's MemoryStore reads it; the ttl when it has none. */
  #expiry(session: { cookie?: unknown }): number {
    const expires = (session.cookie as { expires?: unknown } | undefined)?.expires
    const at =
      expires instanceof Date
        ? expires.getTime()
        : typeof expires === 'string'
          ? Date.parse(expires)
          : NaN
    return Number.isNaN(at) ? Date.now() + this.#ttl : at
  }
}

// Users know it as express-session's `MemoryStore` (the name it is exported under), and
// `store.constructor.name` says so, as with express-session.
Object.defineProperty(ExpressSessionMemoryStore, 'name', { value: 'MemoryStore' })
