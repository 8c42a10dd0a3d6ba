/**
 * RedisStore's save: the save script, repeated after it asks for the owner's index to be
 * written first ('link') or hands back a connect-redis session to convert ('legacy').
 */
import createDebug from 'debug'
import type { SaveResult, SessionChange } from '../../lib/store.js'
import { StoreError } from '../../lib/store.js'
import { convertOnSave } from './connect-redis.js'
import { asReply, parseHash, saveArgs, unexpected } from './records.js'
import { SAVE_SCRIPT, type Script } from './scripts.js'
import type { UserIndexKeys } from './user-index.js'

/** A save retries after 'link' (index the new owner) and 'legacy' (convert); a few suffice. */
const MAX_SAVE_STEPS = 6
const debug = createDebug('concord-session:redis')

/** What a save needs of its store. */
export interface SaveContext {
  users: UserIndexKeys
  /** Runs `script` on the session's key (and its connect-redis key, when reading those is on). */
  script(script: Script, id: string, args: string[]): Promise<unknown>
}

/** Runs one save against `applyBy` (Redis's clock, ms): see RedisStore.save. */
export async function saveSteps(
  store: SaveContext,
  id: string,
  key: string,
  change: SessionChange,
  applyBy: string,
): Promise<SaveResult> {
  let linked = false
  let legacyRaw = ''
  let set = change.set
  let unset = change.unset
  let evicted: string[] = []
  const { userId, userLimit } = change
  // Adds the id to the owner's index (under userLimit: or refuses); false when refused.
  const link = async (): Promise<boolean> => {
    if (userLimit === undefined) {
      await store.users.add(userId!, id, applyBy)
      return (linked = true)
    }
    const outcome = await store.users.link(userId!, id, userLimit, applyBy)
    if (outcome === 'refused') return false
    evicted = outcome
    return (linked = true)
  }
  if (change.expectedVersion === null && userId !== null && !(await link()))
    return { ok: false, reason: 'userLimit' }
  for (let step = 0; step < MAX_SAVE_STEPS; step++) {
    const reply = asReply(
      await store.script(SAVE_SCRIPT, id, saveArgs(change, set, unset, linked, legacyRaw, applyBy)),
      key,
    )
    switch (reply[0]) {
      case 'ok': {
        const version = Number(reply[1])
        if (userLimit !== undefined && linked) {
          // The link is no longer in flight. The save stands either way, so a failure here
          // only leaves the id counted as in flight until its deadline.
          await store.users
            .settle(userId!, id)
            .catch((err: unknown) => debug('could not settle the link of %s: %O', key, err))
        }
        return evicted.length > 0 ? { ok: true, version, evicted } : { ok: true, version }
      }
      case 'gone':
        return { ok: false, reason: 'gone' }
      case 'conflict':
        return { ok: false, reason: 'conflict', current: parseHash(key, reply) }
      case 'late':
        throw new StoreError(
          `RedisStore: save of ${key} reached Redis after its deadline and was not applied`,
          { code: 'ETIMEDOUT' },
        )
      case 'link':
        if (!(await link())) return { ok: false, reason: 'userLimit' }
        break
      case 'legacy': {
        const conversion = convertOnSave(key, reply, change)
        if ('current' in conversion) return { ok: false, reason: 'conflict', ...conversion }
        ;({ legacyRaw, set, unset } = conversion)
        break
      }
      default:
        throw unexpected(key, reply)
    }
  }
  throw new StoreError(
    `RedisStore: save of ${key} did not settle in ${MAX_SAVE_STEPS} steps (it kept changing)`,
    { code: 'EBUSY' },
  )
}
