/**
 * Id renewal for RedisStore (the `Renewable` capability of lib/store.ts).
 *
 * Layout: the session moves to `prefix + newId` with all its fields (data, `@version`,
 * `@userId`, `@createdAt`, `@expiresAt`, ...) and a `@renewedAt` field. The old key becomes a
 * sorted set with one member, the new id, scored by the end of the grace window
 * (`min(now + graceMs, expiresAt)`) and expiring then. The session scripts answer 'forward' for
 * it and the store repeats the call on the new id (a second round trip, only for an old id in
 * its grace); past the grace it is dead: `load` is null, `save` is 'gone', `touch` does nothing,
 * and no script ever writes a hash there again. `count` scans hashes only, so forwards are not
 * counted as sessions.
 *
 * Single server: one script does the whole move, index included (RENEW_SCRIPT).
 *
 * Cluster: the two keys are in different slots, so the move takes three steps, each atomic in
 * its own slot, fenced by a mark and the session's version:
 * 1. In the old key's slot (MARK_SCRIPT): mark the session as moving to the new id until the
 *    call's deadline, and read it: its fields at version v. While the mark holds, the save
 *    script answers 'moving' and savers wait a moment. If the session has an owner, the new id
 *    is added to the owner's index next, so a session never names an owner whose index does not
 *    list it.
 * 2. In the new key's slot (PLACE_SCRIPT): write the copy, unless that id is in use.
 * 3. In the old key's slot (COMMIT_SCRIPT): if the session still carries this mark and version
 *    v, replace it with the forward; otherwise delete the copy and start again from 1.
 *
 * Why this is safe: step 3 is the single point where the session moves. Before it, the old key
 * is the session and the copy is unreachable (nobody has been told the new id); after it, the old
 * key only forwards, and the copy equals the session at version v, which the check proves is
 * still its latest state, since every save bumps the version. A save through the old id racing
 * the move waits while the mark holds and then follows the forward; if the mark ran out first
 * (a step slower than the deadline), the save lands, step 3 refuses, and the copy is deleted.
 * Of concurrent renewals only one marks the session; the others wait for its forward and answer
 * 'renewed'. A touch does not bump the version, so step 3 replies with the session's expiry at
 * that moment and the copy catches up if it moved later. A mark lives until the renewal's
 * deadline at most, and a failed renewal lifts it at once, so it never locks a session for long.
 * A renewal that fails after step 2 lifts its mark and, if the mark was still its own (so step 3
 * never happened and now never can), deletes its copy. Only if the process dies, or Redis stays
 * unreachable, between steps 2 and 3 is the copy left, under an id nobody was given: no cookie
 * can reach it, and it expires with the session's own expiry; until then `count` includes it
 * and the owner's `listByUser` may list it.
 */
import createDebug from 'debug'
import type { RenewOptions, RenewResult, Store } from '../../lib/store.js'
import { StoreError } from '../../lib/store.js'
import type { RedisConnection } from './client.js'
import { asReply, unexpected, type Reply } from './records.js'
import {
  CATCH_UP_SCRIPT,
  COMMIT_SCRIPT,
  MARK_SCRIPT,
  PLACE_SCRIPT,
  RENEW_SCRIPT,
  UNMARK_SCRIPT,
} from './renew-scripts.js'
import type { UserIndexKeys } from './user-index.js'

const debug = createDebug('concord-session:redis')

/** Forwards followed in a row at most (an id renewed again within its grace). */
export const MAX_HOPS = 8

/** Attempts of a cluster move whose mark ran out before its commit (a very slow step). */
const MAX_MOVES = 5

/**
 * What renewal needs from its store: the store's own public calls, its connection, its user
 * index and how it names keys.
 *
 * @example
 * ```ts
 * const context: RenewalContext = { store, redis, users, key, userKey, legacyPrefix: undefined }
 * ```
 */
export interface RenewalContext {
  /** The store itself, for its public load and save (converting a connect-redis session). */
  readonly store: Pick<Store, 'load' | 'save'>
  readonly redis: RedisConnection
  readonly users: UserIndexKeys
  key(id: string): string
  userKey(userId: string): string
  /** The prefix of connect-redis sessions, when the store reads them. */
  readonly legacyPrefix: string | undefined
}

/**
 * Renews `oldId` as `newId` (see the file's comment for how). `applyBy`: epoch ms after which no
 * step may write (the call's deadline, by Redis's clock).
 *
 * @example
 * ```ts
 * const result = await renewSession(context, oldId, newId, { now, graceMs: 30_000 }, deadline)
 * ```
 */
export async function renewSession(
  context: RenewalContext,
  oldId: string,
  newId: string,
  options: RenewOptions,
  applyBy: number,
): Promise<RenewResult> {
  const { legacyPrefix, redis } = context
  if (legacyPrefix !== undefined) {
    const legacyKey = legacyPrefix + newId
    if ((await redis.command(legacyKey, ['EXISTS', legacyKey])) === 1)
      return { ok: false, reason: 'taken' }
  }
  const move = redis.isCluster ? moveAcrossSlots : moveInOneScript
  for (let attempt = 0; attempt < 3; attempt++) {
    const result = await move(context, oldId, newId, options, applyBy)
    if (result.ok || result.reason !== 'gone') return result
    // A connect-redis session is converted to a hash first; then it moves like any other.
    if ((await convertLegacy(context, oldId)) === 'none') return result
  }
  throw new StoreError(
    `RedisStore: renewal of ${context.key(oldId)}: the connect-redis session kept changing ` +
      'while it was converted; not renewed',
    { code: 'EBUSY' },
  )
}

/**
 * Converts the connect-redis session `id` to a hash with a save that changes nothing:
 * 'converted', 'none' when there is no such session, or 'changed' when something else wrote
 * it meanwhile (the caller tries the move again).
 */
async function convertLegacy(
  context: RenewalContext,
  id: string,
): Promise<'converted' | 'none' | 'changed'> {
  if (context.legacyPrefix === undefined) return 'none'
  const record = await context.store.load(id)
  if (record === null) return 'none'
  if (record.version !== 1 || record.renewedTo !== undefined) return 'changed'
  const result = await context.store.save(id, {
    set: {},
    unset: [],
    cookie: record.cookie,
    createdAt: record.createdAt,
    expiresAt: record.expiresAt,
    idleTimeout: record.idleTimeout,
    userId: record.userId ?? null,
    expectedVersion: 1,
  })
  if (result.ok) return 'converted'
  return result.reason === 'gone' ? 'none' : 'changed'
}

async function moveInOneScript(
  context: RenewalContext,
  oldId: string,
  newId: string,
  { now, graceMs }: RenewOptions,
): Promise<RenewResult> {
  const oldKey = context.key(oldId)
  let owner = ''
  // Twice at most: the first call may learn the owner whose index the script must name.
  for (let attempt = 0; attempt < 3; attempt++) {
    const keys = [oldKey, context.key(newId)]
    if (owner !== '') keys.push(context.userKey(owner))
    const args = [String(now), String(graceMs), owner, oldId, newId]
    const reply = asReply(await context.redis.script(RENEW_SCRIPT, keys, args), oldKey)
    const settled = settledReply(oldKey, reply)
    if (settled) return settled
    if (reply[0] !== 'owner') throw unexpected(oldKey, reply)
    owner = reply[1] ?? ''
  }
  throw new StoreError(`RedisStore: renewal of ${oldKey} kept changing owner; not renewed`, {
    code: 'EBUSY',
  })
}

async function moveAcrossSlots(
  context: RenewalContext,
  oldId: string,
  newId: string,
  { now, graceMs }: RenewOptions,
  applyBy: number,
): Promise<RenewResult> {
  const { redis } = context
  const oldKey = context.key(oldId)
  for (let attempt = 1; ; attempt++) {
    if (attempt > MAX_MOVES || Date.now() >= applyBy)
      throw new StoreError(
        `RedisStore: renewal of ${oldKey} did not settle by its deadline; not renewed`,
        { code: 'ETIMEDOUT' },
      )
    // 1. Mark the session as moving (saves wait) and read it: its fields at version v.
    const marked = asReply(
      await redis.script(MARK_SCRIPT, [oldKey], [String(now), newId, String(applyBy)]),
      oldKey,
    )
    if (marked[0] === 'busy') {
      // Another renewal is moving it: wait for its forward (or for its mark to run out).
      await pause(attempt)
      attempt--
      continue
    }
    const settled = settledReply(oldKey, marked)
    if (settled) return settled
    if (marked[0] !== 'hash') throw unexpected(oldKey, marked)
    const progress = { placed: false, owner: undefined as string | undefined }
    try {
      const result = await copyAndCommit(
        context,
        oldId,
        newId,
        marked,
        progress,
        now,
        graceMs,
        applyBy,
      )
      if (result !== 'again') return result
    } catch (err) {
      await abandon(context, oldId, newId, progress)
      throw err
    }
  }
}

/**
 * After a failure: lifts the mark, and if it was still this renewal's (so the commit never
 * happened and now never can), deletes the copy and its index entry. When the mark is gone the
 * commit may have landed, and the copy is the session: it stays. Best effort: a step that fails
 * here leaves the mark to run out at its deadline, or an unreachable copy (see the file's
 * comment).
 */
async function abandon(
  context: RenewalContext,
  oldId: string,
  newId: string,
  progress: { placed: boolean; owner: string | undefined },
): Promise<void> {
  const oldKey = context.key(oldId)
  try {
    const unmarked = await context.redis.script(UNMARK_SCRIPT, [oldKey], [newId])
    if (unmarked !== 1 || !progress.placed) return
    const newKey = context.key(newId)
    await context.redis.command(newKey, ['UNLINK', newKey])
    if (progress.owner !== undefined) await context.users.remove(progress.owner, [newId])
  } catch (err) {
    debug('renewal of %s as %s failed, and so did its clean-up: %O', oldId, newId, err)
  }
}

/** Steps 2 and 3 of a cluster move, for the session read as `marked`. */
async function copyAndCommit(
  context: RenewalContext,
  oldId: string,
  newId: string,
  marked: Reply,
  progress: { placed: boolean; owner: string | undefined },
  now: number,
  graceMs: number,
  applyBy: number,
): Promise<RenewResult | 'again'> {
  const { redis, users } = context
  const oldKey = context.key(oldId)
  const newKey = context.key(newId)
  const fields = marked.slice(1) as string[]
  const version = fieldOf(fields, '@version')
  const expiresAt = fieldOf(fields, '@expiresAt')
  if (version === undefined || expiresAt === undefined)
    throw unexpected(oldKey, ['corrupt', 'metadata field @version or @expiresAt is missing'])
  const owner = (progress.owner = fieldOf(fields, '@userId'))
  // The index lists the new id before any session names the owner under it.
  if (owner !== undefined) await users.add(owner, newId, String(applyBy))

  // 2. The copy, under the new id nobody knows yet.
  const copy = withField(fields, '@renewedAt', String(now))
  const placed = asReply(
    await redis.script(PLACE_SCRIPT, [newKey], [String(applyBy), expiresAt, ...copy]),
    newKey,
  )
  // The index keeps the new id: a spare entry is pruned later, while removing it could hide a
  // session of this owner that already has that id.
  if (placed[0] === 'taken') {
    await redis.script(UNMARK_SCRIPT, [oldKey], [newId])
    return { ok: false, reason: 'taken' }
  }
  if (placed[0] === 'late')
    throw new StoreError(`RedisStore: renewal of ${oldKey} ran past its deadline; not renewed`, {
      code: 'ETIMEDOUT',
    })
  if (placed[0] !== 'ok') throw unexpected(newKey, placed)
  progress.placed = true

  // 3. The move itself, fenced by the mark and the version.
  const committed = asReply(
    await redis.script(COMMIT_SCRIPT, [oldKey], [String(now), String(graceMs), version, newId]),
    oldKey,
  )
  if (committed[0] === 'ok') {
    await settle(context, oldId, newId, owner, committed[1]!, expiresAt)
    return { ok: true }
  }
  // Not moved: the copy must not outlive this attempt.
  await redis.command(newKey, ['UNLINK', newKey])
  if (owner !== undefined) await users.remove(owner, [newId])
  if (committed[0] === 'changed') return 'again'
  const settled = settledReply(oldKey, committed)
  if (settled) return settled
  throw unexpected(oldKey, committed)
}

/** Waits a little before asking again: longer on each attempt, and never in step with others. */
function pause(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(20, 2 * attempt)))
}

/**
 * After a cluster move: the copy catches up with a touch the old id got meanwhile, and the index
 * drops the old id. The renewal stands either way: a failure here leaves an expiry a touch
 * behind, or a dead id in the index that `listByUser` prunes.
 */
async function settle(
  context: RenewalContext,
  oldId: string,
  newId: string,
  owner: string | undefined,
  expiresAt: string,
  copied: string,
): Promise<void> {
  const newKey = context.key(newId)
  try {
    if (Number(expiresAt) > Number(copied))
      await context.redis.script(CATCH_UP_SCRIPT, [newKey], [expiresAt])
    if (owner !== undefined) {
      await context.users.remove(owner, [oldId])
      await context.users.settle(owner, newId)
    }
  } catch (err) {
    debug('renewal of %s as %s: could not settle: %O', oldId, newKey, err)
  }
}

function settledReply(key: string, reply: Reply): RenewResult | undefined {
  switch (reply[0]) {
    case 'ok':
      return { ok: true }
    case 'renewed':
      return { ok: false, reason: 'renewed', id: reply[1]! }
    case 'gone':
      return { ok: false, reason: 'gone' }
    case 'taken':
      return { ok: false, reason: 'taken' }
    case 'corrupt':
      throw unexpected(key, reply)
    default:
      return undefined
  }
}

function fieldOf(fields: string[], name: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1]
  return undefined
}

function withField(fields: string[], name: string, value: string): string[] {
  const out: string[] = []
  for (let i = 0; i + 1 < fields.length; i += 2)
    if (fields[i] !== name) out.push(fields[i]!, fields[i + 1]!)
  out.push(name, value)
  return out
}
