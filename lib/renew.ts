/**
 * Renewal: a session gets a new id every so often, keeping its data, owner, created time and
 * absolute expiry, so a stolen cookie stops working soon even while its session lives on
 * (https://cheatsheetseries.owasp.org/cheatsheets/Session_Management_Cheat_Sheet.html#renewal-of-the-session-id).
 * The store moves the session and lets the old id forward to the new one for a short grace
 * window (see `Renewable` in lib/store.ts), so requests already in flight lose nothing.
 */
import createDebug from 'debug'
import { rejectUnknownKeys } from './check-options.js'
import { isRenewable, StoreError, type SessionRecord, type Store } from './store.js'

const debug = createDebug('concord-session')

/** The `renew` option of `session()`. At least one of `every` and `afterRequests` is required. */
export interface RenewOptions {
  /** Renew an id this long after it was issued: ms, or a duration such as `'15m'`. */
  every?: number | string
  /**
   * Renew after this many requests with one id, counted by each process on its own (so with
   * N processes an id lasts up to N times as many requests). Costs no store call.
   */
  afterRequests?: number
  /** How long the old id still reaches the session: ms or a duration. Default `'30s'`. */
  grace?: number | string
}

export interface ResolvedRenew {
  every: number | undefined
  afterRequests: number | undefined
  graceMs: number
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/
const DEFAULT_GRACE_MS = 30_000
/** The per-process request counts kept at once; the least recently counted go first. */
const MAX_COUNTED = 10_000

/**
 * Validates the `renew` option at setup. The store must be able to renew: a session moved by
 * hand (destroy, then create) would lose the saves of requests still in flight.
 *
 * @example
 * ```ts
 * resolveRenew({ every: '15m', grace: '30s' }, new MemoryStore())
 * // { every: 900000, afterRequests: undefined, graceMs: 30000 }
 * ```
 */
export function resolveRenew(value: unknown, store: Store): ResolvedRenew | undefined {
  if (value === undefined || value === false) return undefined
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new TypeError(
      "session(): renew must be an object such as { every: '15m', afterRequests: 1000 }",
    )
  rejectUnknownKeys('session(): renew', value, ['every', 'afterRequests', 'grace'])
  const options = value as RenewOptions
  const every = duration('every', options.every)
  const afterRequests = options.afterRequests
  if (
    afterRequests !== undefined &&
    (typeof afterRequests !== 'number' || !Number.isInteger(afterRequests) || afterRequests < 1)
  )
    throw new TypeError(
      `session(): renew.afterRequests must be a positive integer, got ${show(afterRequests)}`,
    )
  if (every === undefined && afterRequests === undefined)
    throw new TypeError(
      "session(): renew needs every (such as '15m') or afterRequests (such as 1000), or both",
    )
  if (!isRenewable(store))
    throw new TypeError(
      'session(): renew needs a store that can renew ids with a grace window ' +
        '(MemoryStore, RedisStore, FileStore, PostgresStore, ' +
        'or a LayeredStore over one of them); ' +
        'this store has no renew(oldId, newId, options) method. ' +
        'Remove the renew option, or call req.session.regenerate({ keepData: true }) yourself',
    )
  return {
    every,
    afterRequests,
    graceMs: duration('grace', options.grace) ?? DEFAULT_GRACE_MS,
  }
}

function duration(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return value
  const match = typeof value === 'string' ? DURATION.exec(value.trim()) : null
  const ms = match ? Number(match[1]) * UNITS[match[2]!]! : 0
  if (ms > 0) return ms
  throw new TypeError(
    `session(): renew.${name} must be a positive number of ms or a duration ` +
      `such as '30s', '15m', '2h' (units ms s m h d), got ${show(value)}`,
  )
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value)
}

/**
 * Counts the requests each id served in this process, for `afterRequests`. Bounded: an id not
 * seen for a while is dropped and starts counting again.
 *
 * @example
 * ```ts
 * const counts = new RequestCounts()
 * counts.hit('sid', 1000) // false until the 1000th request with 'sid'
 * ```
 */
export class RequestCounts {
  readonly #counts = new Map<string, number>()

  /** Counts one request with `id`; true when it is the `limit`-th (and forgets the count). */
  hit(id: string, limit: number): boolean {
    const counts = this.#counts
    const count = (counts.get(id) ?? 0) + 1
    counts.delete(id)
    if (count >= limit) return true
    counts.set(id, count)
    if (counts.size > MAX_COUNTED) counts.delete(counts.keys().next().value as string)
    return false
  }

  forget(id: string): void {
    this.#counts.delete(id)
  }
}

/**
 * Whether the session loaded as `record` under `id` is due for a new id now. Counts the request
 * towards `afterRequests` as a side effect.
 *
 * @example
 * ```ts
 * if (renewDue(renew, counts, id, record, Date.now())) await renewId(...)
 * ```
 */
export function renewDue(
  renew: ResolvedRenew,
  counts: RequestCounts,
  id: string,
  record: SessionRecord,
  now: number,
): boolean {
  const byCount = renew.afterRequests !== undefined && counts.hit(id, renew.afterRequests)
  if (byCount) return true
  return renew.every !== undefined && now - (record.renewedAt ?? record.createdAt) >= renew.every
}

/** What a renewal attempt came to: the id the session lives under, or null if it is gone. */
export type RenewOutcome = { id: string; renewed: boolean } | null

/** Attempts with a fresh id when the one generated is taken (a custom genid repeating). */
const MAX_TAKEN = 5

/**
 * Moves the session `oldId` to a new id in the store, with the grace window. Resolves to the
 * new id (`renewed: true`), to the id another request renewed it to first (`renewed: false`),
 * or to null when the session is gone.
 *
 * @example
 * ```ts
 * const outcome = await renewId(store, 'old', () => randomUUID(), 30_000, Date.now())
 * ```
 */
export async function renewId(
  store: Store,
  oldId: string,
  generateId: () => Promise<string>,
  graceMs: number,
  now: number,
  call: <T>(fn: () => Promise<T>) => Promise<T> = (fn) => fn(),
): Promise<RenewOutcome> {
  if (!isRenewable(store)) throw new StoreError('the store cannot renew session ids')
  for (let attempt = 1; attempt <= MAX_TAKEN; attempt++) {
    const newId = await generateId()
    const result = await call(() => store.renew(oldId, newId, { now, graceMs }))
    if (result.ok) {
      debug('session %s renewed as %s', oldId, newId)
      return { id: newId, renewed: true }
    }
    if (result.reason === 'renewed') return { id: result.id, renewed: false }
    if (result.reason === 'gone') return null
    debug('renewal of %s: new id %s is taken, generating another', oldId, newId)
  }
  throw new StoreError(`session ${oldId}: genid kept returning ids in use; not renewed`, {
    code: 'ECONFLICT',
  })
}
