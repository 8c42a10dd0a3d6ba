import type { SaveResult, SessionChange } from '../../lib/store.js'
import { planUserLimit, type UserLimit } from '../../lib/user-limit.js'
import type { Read, Slot, Slots } from './format.js'
import { keyOf } from './format.js'
import type { SessionFiles } from './files.js'
import type { Held } from './lock.js'
import type { UserDirectory } from './users.js'

/** What a limited save needs of its store. */
export interface LimitedSave {
  slots: Slots
  files: SessionFiles
  users: UserDirectory
  underLock<T>(
    what: string,
    slot: Slot,
    deadline: number | undefined,
    fn: (held: Held) => Promise<T>,
  ): Promise<T>
  removeLocked(slot: Slot, read: Read, held: Held, why: string): Promise<void>
  /** The plain save, under the session's lock. */
  save(slot: Slot, id: string, change: SessionChange): Promise<SaveResult>
}

/**
 * A save that may link the session to a user under `maxSessionsPerUser`. Sign-ins of one user
 * queue on the user's own lock, taken before any session lock and never after one, so
 * counting the user's sessions, evicting the oldest and linking this one happen as one step.
 */
export function saveLimited(
  store: LimitedSave,
  slot: Slot,
  id: string,
  change: SessionChange,
  userId: string,
  limit: UserLimit,
): Promise<SaveResult> {
  const { deadline } = change
  const userSlot = store.slots.byKey(keyOf(`user:${userId}`))
  return store.underLock('link a session to its user', userSlot, deadline, async () => {
    // Only a link that would be written counts; a save that would conflict evicts nothing.
    const own = await store.files.read(slot, id)
    const live = own.kind === 'ok' && own.expiresAt > Date.now() ? own.file : undefined
    const writes =
      change.expectedVersion === null ? !live : live?.version === change.expectedVersion
    if (!writes || live?.userId === userId || own.kind === 'forward')
      return store.save(slot, id, change)
    const others = await store.users.liveSessions(userId, slot.key, (key) =>
      store.files.read(store.slots.byKey(key)),
    )
    const plan = planUserLimit(limit, [...others.values()])
    if (plan === 'refuse') return { ok: false, reason: 'userLimit' }
    for (const other of plan) {
      const otherSlot = store.slots.byKey(others.get(other)!.key)
      await store.underLock('evict a session', otherSlot, deadline, async (held) => {
        const read = await store.files.read(otherSlot)
        if (read.kind === 'ok' && read.file.userId === userId)
          await store.removeLocked(otherSlot, read, held, 'evicted by maxSessionsPerUser')
      })
    }
    const result = await store.save(slot, id, change)
    return result.ok && plan.length > 0 ? { ...result, evicted: plan } : result
  })
}
