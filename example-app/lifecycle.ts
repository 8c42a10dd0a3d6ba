/**
 * The shop's session lifecycle settings: id renewal and the per-user device limit, their
 * environment variables, the capability checks that turn either off on a store that lacks it,
 * and the notice a device signed out by the limit sees on its next page.
 */
import { unsign } from 'cookie-signature'
import {
  enforcesUserLimit,
  isRenewable,
  type SessionOptions,
  type Store,
} from '../entries/index.js'

/** The `renew` option as the shop passes it to `session()`. */
export type ShopRenew = NonNullable<SessionOptions['renew']>

/** A new id 15 minutes after the last; the old id still works 30 s, for requests in flight. */
export const DEFAULT_RENEW: ShopRenew = Object.freeze({ every: '15m', grace: '30s' })
/** Devices one user may be signed in on at once; a sign-in past it signs out the oldest. */
export const DEFAULT_MAX_DEVICES = 3

const DURATION = /^\d+(\.\d+)?\s*(ms|s|m|h|d)?$/
const OFF = /^off$/i

/**
 * The lifecycle settings from the environment, for server.ts:
 *   SESSION_RENEW_EVERY=15m   renew an id this long after it was issued (ms or 30s/15m/2h/1d);
 *                             `off` turns renewal off
 *   SESSION_RENEW_AFTER_REQUESTS=1000  also renew after this many requests with one id
 *   SESSION_RENEW_GRACE=30s   how long the old id still reaches the session
 *   SESSION_MAX_DEVICES=3     devices one user stays signed in on; `off` for no limit
 * Unset or empty variables take the defaults. A value that does not parse throws, naming it.
 *
 * @example
 * ```ts
 * lifecycleFromEnv({ SESSION_RENEW_AFTER_REQUESTS: '3' })
 * // { renew: { every: '15m', afterRequests: 3, grace: '30s' }, maxDevices: 3 }
 * ```
 */
export function lifecycleFromEnv(env: NodeJS.ProcessEnv): {
  renew: ShopRenew | false
  maxDevices: number | false
} {
  const get = (name: string) => env[name]?.trim() || undefined
  const everyText = get('SESSION_RENEW_EVERY')
  const afterText = get('SESSION_RENEW_AFTER_REQUESTS')
  const graceText = get('SESSION_RENEW_GRACE')
  const devicesText = get('SESSION_MAX_DEVICES')

  const every =
    everyText === undefined ? DEFAULT_RENEW.every : durationFrom('SESSION_RENEW_EVERY', everyText)
  const afterRequests =
    afterText === undefined ? undefined : positiveInteger('SESSION_RENEW_AFTER_REQUESTS', afterText)
  const grace =
    graceText === undefined
      ? DEFAULT_RENEW.grace
      : durationFrom('SESSION_RENEW_GRACE', graceText, false)
  const renew: ShopRenew | false =
    every === false && afterRequests === undefined
      ? false
      : {
          ...(every === false ? {} : { every }),
          ...(afterRequests === undefined ? {} : { afterRequests }),
          grace: grace as string | number, // durationFrom(…, false) never answers false
        }
  const maxDevices =
    devicesText === undefined
      ? DEFAULT_MAX_DEVICES
      : OFF.test(devicesText)
        ? false
        : positiveInteger('SESSION_MAX_DEVICES', devicesText)
  return { renew, maxDevices }
}

/** A duration as `session()` takes it (a plain number is ms), or false for `off`. */
function durationFrom(name: string, text: string, canBeOff = true): string | number | false {
  if (canBeOff && OFF.test(text)) return false
  if (DURATION.test(text) && Number.parseFloat(text) > 0)
    return /[a-z]$/.test(text) ? text : Number(text)
  throw new Error(
    `${name} must be a duration such as 30s, 15m or 2h (or a number of ms)` +
      `${canBeOff ? ', or off' : ''}; got ${JSON.stringify(text)}`,
  )
}

function positiveInteger(name: string, text: string): number {
  if (/^\d{1,9}$/.test(text) && Number(text) >= 1) return Number(text)
  throw new Error(
    `${name} must be a whole number of at least 1, or off; got ${JSON.stringify(text)}`,
  )
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/**
 * The renewal in words for the page footer, with `duration` rendering ms.
 *
 * @example
 * ```ts
 * describeRenewal({ every: '15m' }, duration) // 'every 15 min'
 * describeRenewal({ every: '15m', afterRequests: 3 }, duration) // 'every 15 min or 3 requests'
 * ```
 */
export function describeRenewal(renew: ShopRenew, duration: (ms: number) => string): string {
  const parts: string[] = []
  if (renew.every !== undefined) {
    const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(String(renew.every).trim())
    const ms = match ? Number(match[1]) * UNIT_MS[match[2]!]! : Number(renew.every)
    parts.push(duration(ms))
  }
  if (renew.afterRequests !== undefined)
    parts.push(`${renew.afterRequests} ${renew.afterRequests === 1 ? 'request' : 'requests'}`)
  return `every ${parts.join(' or ')}`
}

/**
 * The renewal the store can do: `renew` itself, or undefined (with one line to `log`) when the
 * store cannot renew ids, since `session()` refuses `renew` for such a store at setup.
 *
 * @example
 * ```ts
 * session(store, { secret, renew: renewalFor(store, DEFAULT_RENEW, console.warn) })
 * ```
 */
export function renewalFor(
  store: Store,
  renew: ShopRenew | false,
  log: (line: string) => void,
): ShopRenew | undefined {
  if (!renew) return undefined
  if (isRenewable(store)) return renew
  log(`Session id renewal is off: ${storeLabel(store)} cannot renew session ids.`)
  return undefined
}

/**
 * The device limit the store can enforce: `max`, or undefined (with one line to `log`) when
 * the store cannot enforce `maxSessionsPerUser` (an adapted express-session store).
 *
 * @example
 * ```ts
 * session(store, { secret, maxSessionsPerUser: deviceLimitFor(store, 3, console.warn) })
 * ```
 */
export function deviceLimitFor(
  store: Store,
  max: number | false,
  log: (line: string) => void,
): number | undefined {
  if (max === false) return undefined
  if (enforcesUserLimit(store)) return max
  log(
    `The limit of ${max} signed-in devices per user is off: ` +
      `${storeLabel(store)} cannot enforce it.`,
  )
  return undefined
}

function storeLabel(store: Store): string {
  const name = (store as { constructor?: { name?: unknown } }).constructor?.name
  return typeof name === 'string' && name && name !== 'Object' ? `this ${name}` : 'this store'
}

/**
 * The session ids the device limit signed out, kept in this process until their session would
 * have ended anyway, so each device sees once why it was signed out. With several processes a
 * device that lands on another one is signed out all the same, just without the notice.
 *
 * @example
 * ```ts
 * const notices = new EvictionNotices(30 * 60_000)
 * notices.add('old-id', Date.now())
 * notices.take('old-id', Date.now()) // true, then false
 * ```
 */
export class EvictionNotices {
  readonly #until = new Map<string, number>()

  constructor(
    private readonly keepFor: number,
    private readonly max = 10_000,
  ) {}

  get size(): number {
    return this.#until.size
  }

  add(id: string, now: number): void {
    this.#until.delete(id)
    this.#until.set(id, now + this.keepFor)
    // The oldest notices go first when too many pile up.
    while (this.#until.size > this.max) this.#until.delete(this.#until.keys().next().value!)
  }

  /** Whether `id` was signed out by the limit (and not too long ago); forgets it either way. */
  take(id: string, now: number): boolean {
    const until = this.#until.get(id)
    if (until === undefined) return false
    this.#until.delete(id)
    return until > now
  }
}

/**
 * The session id the request's cookie carries when its signature verifies, whatever the
 * middleware made of it: for a cookie whose session is gone, `req.session.id` is a new id.
 *
 * @example
 * ```ts
 * cookieSessionId(req.headers.cookie, 'shop.sid', ['secret']) // 'a1b2…' or undefined
 * ```
 */
export function cookieSessionId(
  header: string | undefined,
  name: string,
  secrets: readonly string[],
): string | undefined {
  if (!header) return undefined
  for (const pair of header.split(';')) {
    const at = pair.indexOf('=')
    if (at === -1 || pair.slice(0, at).trim() !== name) continue
    let value: string
    try {
      value = decodeURIComponent(pair.slice(at + 1).trim())
    } catch {
      continue
    }
    if (!value.startsWith('s:')) continue
    for (const secret of secrets) {
      const id = unsign(value.slice(2), secret)
      if (id !== false) return id
    }
  }
  return undefined
}
