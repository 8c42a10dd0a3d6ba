/**
 * RedisStore's sessions of one user: listing them from the user's index, and signing the user
 * out everywhere. The index itself is user-index.ts.
 */
import { isValidSessionId } from '../../lib/store.js'
import type { LifecycleListeners } from '../../lib/store-notices.js'
import type { RedisConnection } from './client.js'
import { asReply } from './records.js'
import { DESTROY_SCRIPT, type Script } from './scripts.js'
import { isWrongType, type UserIndexKeys } from './user-index.js'

/** What the user-session calls need of the store. */
export interface UserSessionsContext {
  redis: RedisConnection
  users: UserIndexKeys
  /** The key of the session `id`. */
  key(id: string): string
  /** Runs `script` on the session's key (and its connect-redis key, when reading those is on). */
  script(script: Script, id: string, args: string[]): Promise<unknown>
  notices: LifecycleListeners
}

/**
 * Ids of the user's live sessions at `now`, pruning dead ones from the index: see
 * RedisStore.listByUser.
 *
 * @example
 * ```ts
 * const ids = await listUserSessions(context, 'user-1', Date.now())
 * ```
 */
export async function listUserSessions(
  store: UserSessionsContext,
  userId: string,
  now: number,
): Promise<string[]> {
  const ids = await store.users.current(userId)
  const states = await Promise.all(
    ids.map((id) => {
      if (!isValidSessionId(id)) return null
      const key = store.key(id)
      // An old id of a renewed session is a forward, not a hash: not a live session.
      return (
        store.redis.command(key, ['HMGET', key, '@userId', '@expiresAt']) as Promise<
          (string | null)[]
        >
      ).catch((err: unknown) => {
        if (isWrongType(err)) return null
        throw err
      })
    }),
  )
  const live: string[] = []
  const dead: string[] = []
  ids.forEach((id, i) => {
    const state = states[i]
    if (!state || state[1] === null || Number(state[1]) <= now) dead.push(id)
    else if (state[0] === userId) live.push(id)
  })
  if (dead.length > 0) await store.users.remove(userId, dead)
  return live
}

/**
 * Destroys each session the user owns and resolves to how many there were: see
 * RedisStore.destroyByUser.
 *
 * @example
 * ```ts
 * const count = await destroyUserSessions(context, 'user-1', Date.now())
 * ```
 */
export async function destroyUserSessions(
  store: UserSessionsContext,
  userId: string,
  now: number,
): Promise<number> {
  const ids = await store.users.current(userId)
  const replies = await Promise.all(
    ids.map(async (id) => {
      if (!isValidSessionId(id)) return 'none'
      const reply = asReply(
        await store.script(DESTROY_SCRIPT, id, [String(now), '1', userId]),
        store.key(id),
      )
      return reply[0]
    }),
  )
  // Sessions now owned by someone else ('kept') stay listed until they end; see listByUser.
  const removed = ids.filter((_, i) => replies[i] !== 'kept')
  if (removed.length > 0) await store.users.remove(userId, removed)
  const count = replies.filter((r) => r === 'destroyed').length
  store.notices.signedOut(userId, count)
  return count
}
