/**
 * At most N sessions per user: the option's shape, its validation, the error a refused sign-in
 * rejects with, and the choice of which sessions to end. Stores enforce the limit themselves,
 * atomically with the link (see `SessionChange.userLimit`); this file only decides, so every
 * store decides the same way.
 */

/** How many sessions one user may hold, and what a sign-in past that does. */
export interface UserLimit {
  /** The most live sessions one user may hold at once, at least 1. */
  max: number
  /**
   * `'evictOldest'` (default): the sign-in succeeds and the user's oldest sessions (earliest
   * `createdAt`) are destroyed so that `max` remain. `'refuse'`: the sign-in fails with a
   * {@link SessionLimitError} and the session is not linked.
   */
  onLimit: 'evictOldest' | 'refuse'
}

/** The `maxSessionsPerUser` option: a number means `{ max, onLimit: 'evictOldest' }`. */
export type MaxSessionsPerUser = number | { max: number; onLimit?: 'evictOldest' | 'refuse' }

/**
 * Checks and normalizes `maxSessionsPerUser`; throws a TypeError that says what to pass.
 *
 * @example
 * ```ts
 * resolveUserLimit(3) // { max: 3, onLimit: 'evictOldest' }
 * resolveUserLimit({ max: 1, onLimit: 'refuse' }) // { max: 1, onLimit: 'refuse' }
 * ```
 */
export function resolveUserLimit(value: unknown): UserLimit | undefined {
  if (value === undefined) return undefined
  const hint = "pass a positive integer (3) or { max: 3, onLimit: 'evictOldest' | 'refuse' }"
  const object =
    typeof value === 'object' && value !== null
      ? (value as { max?: unknown; onLimit?: unknown })
      : undefined
  const max = object ? object.max : value
  const onLimit = object?.onLimit ?? 'evictOldest'
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) {
    throw new TypeError(
      `session(): maxSessionsPerUser must be at least 1 session; ${hint}, got ` +
        `${JSON.stringify(value)}`,
    )
  }
  if (object) {
    for (const key of Object.keys(object))
      if (key !== 'max' && key !== 'onLimit')
        throw new TypeError(`session(): maxSessionsPerUser has no option "${key}"; ${hint}`)
  }
  if (onLimit !== 'evictOldest' && onLimit !== 'refuse') {
    throw new TypeError(
      `session(): maxSessionsPerUser.onLimit must be 'evictOldest' or 'refuse', got ` +
        `${JSON.stringify(onLimit)}`,
    )
  }
  return Object.freeze({ max, onLimit })
}

/** One of the user's other live sessions, as a store sees it when it links a new one. */
export interface UserSession {
  id: string
  createdAt: number
}

/**
 * What linking one more session to a user does, given the user's other live sessions:
 * `'refuse'`, or the ids to destroy first (oldest `createdAt` first, ties by id; empty when
 * the user is under the limit).
 *
 * @example
 * ```ts
 * const plan = planUserLimit(limit, others)
 * if (plan === 'refuse') return { ok: false, reason: 'userLimit' }
 * for (const id of plan) destroy(id)
 * ```
 */
export function planUserLimit(
  limit: UserLimit,
  others: readonly UserSession[],
): 'refuse' | string[] {
  const excess = others.length - limit.max + 1
  if (excess <= 0) return []
  if (limit.onLimit === 'refuse') return 'refuse'
  return [...others]
    .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, excess)
    .map((session) => session.id)
}

/**
 * A sign-in refused by `maxSessionsPerUser: { onLimit: 'refuse' }`: the user already holds the
 * most sessions allowed. The session was not linked (`setUser` is undone) and that save wrote
 * nothing; the request's other changes stay on `req.session` and are saved as usual.
 * Status 409; `expose` is true, so an error handler may show the message.
 *
 * @example
 * ```ts
 * req.session.setUser(user.id)
 * try {
 *   await req.session.save()
 * } catch (err) {
 *   if (err instanceof SessionLimitError) return res.status(409).render('too-many-devices')
 *   throw err
 * }
 * ```
 */
export class SessionLimitError extends Error {
  override readonly name = 'SessionLimitError'
  readonly code = 'ESESSIONLIMIT'
  readonly status = 409
  readonly statusCode = 409
  readonly expose = true
  /** The user who holds the most sessions allowed. */
  readonly userId: string
  readonly max: number

  constructor(userId: string, max: number) {
    super(
      `this user already has ${max} session${max === 1 ? '' : 's'}, the most maxSessionsPerUser ` +
        `allows; sign out elsewhere first`,
    )
    this.userId = userId
    this.max = max
  }
}
