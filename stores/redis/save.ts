/**
 * RedisStore's save: the save script, repeated after it asks for the owner's index to be
 * written first ('link'), hands back a connect-redis session to convert ('legacy'), names the
 * id an old id was renewed to ('forward'), or says a renewal on a cluster is moving the session
 * ('moving': wait a moment).
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
/** No evicted ids: shared, never changed. */
const NO_IDS: string[] = []

/** What a save needs of its store. */
export interface SaveContext {
  users: UserIndexKeys
  /** The key of the session `id`. */
  key(id: string): string
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
  let renewedTo: string | undefined
  let linked = false
  let legacyRaw = ''
  let set = change.set
  let unset = change.unset
  let evicted = NO_IDS
  const { userId, userLimit } = change
  if (change.expectedVersion === null && userId !== null) {
    const outcome = await linkOwner(store, userId, id, userLimit, applyBy)
    if (outcome === undefined) return { ok: false, reason: 'userLimit' }
    evicted = outcome
    linked = true
  }
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
        const saved: SaveResult = { ok: true, version }
        if (evicted.length > 0) saved.evicted = evicted
        if (renewedTo !== undefined) saved.renewedTo = renewedTo
        return saved
      }
      case 'moving':
        // A renewal is moving the session (for a few round trips at most): wait, not a step.
        if (Date.now() >= Number(applyBy))
          throw new StoreError(
            `RedisStore: save of ${key} waited for a renewal past its deadline; not saved`,
            { code: 'ETIMEDOUT' },
          )
        await new Promise((resolve) => setTimeout(resolve, 1 + Math.random() * 5))
        step--
        break
      case 'forward':
        // The id was renewed within its grace: the save follows it to the session's new id.
        id = renewedTo = reply[1]!
        key = store.key(id)
        linked = false
        break
      case 'gone':
        return { ok: false, reason: 'gone' }
      case 'conflict':
        return { ok: false, reason: 'conflict', current: parseHash(key, reply) }
      case 'late':
        throw new StoreError(
          `RedisStore: save of ${key} reached Redis after its deadline and was not applied`,
          { code: 'ETIMEDOUT' },
        )
      case 'link': {
        const outcome = await linkOwner(store, userId!, id, userLimit, applyBy)
        if (outcome === undefined) return { ok: false, reason: 'userLimit' }
        evicted = outcome
        linked = true
        break
      }
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

/**
 * Adds the id to the owner's index (under `userLimit`: or refuses). Resolves to the ids evicted
 * to make room (none without a limit), or undefined when the link was refused. A function
 * rather than a closure in the save, which would be built on every save.
 */
async function linkOwner(
  store: SaveContext,
  userId: string,
  id: string,
  userLimit: SessionChange['userLimit'],
  applyBy: string,
): Promise<string[] | undefined> {
  if (userLimit === undefined) {
    await store.users.add(userId, id, applyBy)
    return NO_IDS
  }
  const outcome = await store.users.link(userId, id, userLimit, applyBy)
  return outcome === 'refused' ? undefined : outcome
}
