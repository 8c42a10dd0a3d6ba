import { createHash } from 'node:crypto'
import type { SaveResult, SessionChange } from '../../lib/store.js'
import { planUserLimit, type UserLimit } from '../../lib/user-limit.js'
import { StatementRunner, inTransaction } from './runner.js'
import { saveRow, type Row } from './save.js'
import type { Statements } from './sql.js'

/** What a limited save needs of its store. */
export interface LimitedSaveContext {
  runner: StatementRunner
  sql: Statements
  table: string
  migrate: string | undefined
}

/** A row of `userSessions`. */
interface UserSessionRow {
  id: string
  created_ms: string
  user_id: string | null
  own: string
}

/** The advisory lock key of one user's sign-ins in one table: 64 bits of a SHA-256. */
function userLockKey(table: string, userId: string): string {
  return createHash('sha256')
    .update(`concord-session:${table}:user:${userId}`)
    .digest()
    .readBigInt64BE(0)
    .toString()
}

/**
 * A save that may link the session to a user under `maxSessionsPerUser`: one transaction that
 * takes the user's advisory lock (so sign-ins of one user run one at a time), counts the
 * user's other live sessions, deletes the oldest or refuses, and saves. A save that does not
 * write (a conflict, 'gone') rolls the evictions back with it.
 */
export function saveLimited(
  store: LimitedSaveContext,
  id: string,
  change: SessionChange,
  userId: string,
  limit: UserLimit,
  deadline: number,
): Promise<SaveResult> {
  return inTransaction(store.runner, 'save of session', id, deadline, async (query) => {
    await query(store.sql.lockUser, [userLockKey(store.table, userId)])
    const rows = await query<UserSessionRow>(store.sql.userSessions, [userId, Date.now(), id])
    const own = rows.find((row) => row.own === 't')
    let evicted: string[] = []
    if (own?.user_id !== userId) {
      const others = rows
        .filter((row) => row.own !== 't')
        .map((row) => ({ id: row.id, createdAt: Number(row.created_ms) }))
      const plan = planUserLimit(limit, others)
      if (plan === 'refuse') return { value: { ok: false, reason: 'userLimit' }, commit: false }
      if (plan.length > 0) await query(store.sql.evict, [plan, userId])
      evicted = plan
    }
    const result = await saveRow(
      id,
      change,
      deadline,
      (_what, _subject, statement, values) =>
        query<Row>(
          statement in store.sql ? store.sql[statement as keyof Statements] : statement,
          values,
        ),
      store.migrate,
    )
    if (!result.ok || evicted.length === 0) return { value: result, commit: result.ok }
    return { value: { ...result, evicted }, commit: true }
  })
}
