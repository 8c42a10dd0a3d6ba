/**
 * The data side of a save: per-key lifetimes replayed like the data, the keys a write sets and
 * deletes, and a session's data refreshed (or first parsed) from JSON texts.
 */
import { defineKey } from './util.js'
import type { Session } from './session.js'
import { NO_EXPIRES, stateOf, type SavePlan } from './session-state.js'
import { StoreError } from './store.js'

/**
 * One request's effect on the per-key expiries: a key it wrote or deleted loses its lifetime,
 * then each key it gave a lifetime (`keyTtl`) gets that one. Replayed like the data, so two
 * processes giving different keys lifetimes both keep theirs. Returns `before` when unchanged.
 *
 * @example
 * ```ts
 * replayLifetimes({ otp: 5 }, plan, undefined) // {} when the plan wrote or deleted otp
 * ```
 */
export function replayLifetimes(
  before: Record<string, number>,
  plan: SavePlan,
  sets: Record<string, number> | undefined,
): Record<string, number> {
  // The common case: no lifetimes before, none given. Nothing to drop, nothing to add.
  if (sets === undefined && before === NO_EXPIRES) return before
  return replayed(before, plan, sets)
}

/** {@link replayLifetimes} past the common case: apart, so that case builds no closure. */
function replayed(
  before: Record<string, number>,
  plan: SavePlan,
  sets: Record<string, number> | undefined,
): Record<string, number> {
  let after = before
  const drop = (key: string): void => {
    if (!Object.hasOwn(after, key)) return
    if (after === before) after = { ...before }
    delete after[key]
  }
  for (const key of Object.keys(plan.set)) drop(key)
  for (const key of plan.unset) drop(key)
  if (sets !== undefined) {
    if (after === before) after = { ...before }
    for (const key of Object.keys(sets)) defineKey(after, key, sets[key]!)
  }
  return after
}

/** `expires` without entries for keys the data does not hold (deleted, or expired meanwhile). *
 * @example
 * ```ts
 * onlyHeld({ otp: 5, gone: 9 }, { otp: '"1234"' }) // { otp: 5 }
 * ```
 */
export function onlyHeld(
  expires: Record<string, number>,
  data: Record<string, string>,
): Record<string, number> {
  if (expires === NO_EXPIRES) return expires
  let kept = expires
  for (const key of Object.keys(expires)) {
    if (Object.hasOwn(data, key)) continue
    if (kept === expires) kept = { ...expires }
    delete kept[key]
  }
  return Object.keys(kept).length === 0 ? NO_EXPIRES : kept
}

/** The keys to write and to delete to turn `before` into `after`. *
 * @example
 * ```ts
 * diffTexts({ a: '1', b: '2' }, { a: '1', b: '3', c: '4' }) // [{ b: '3', c: '4' }, []]
 * ```
 */
export function diffTexts(
  before: Record<string, string>,
  after: Record<string, string>,
): [Record<string, string>, string[]] {
  const set: Record<string, string> = {}
  for (const key of Object.keys(after))
    if (!Object.hasOwn(before, key) || before[key] !== after[key]) defineKey(set, key, after[key]!)
  const unset: string[] = []
  for (const key of Object.keys(before)) if (!Object.hasOwn(after, key)) unset.push(key)
  return [set, unset]
}

/**
 * Makes the session's data `texts`. With `current` (what the session's keys serialized to when
 * the save was planned), keys whose text did not change are left as they are, not parsed again.
 *
 * @example
 * ```ts
 * refreshData(session, merged, plan.texts) // keys whose text stayed are not parsed again
 * ```
 */
export function refreshData(
  session: Session,
  texts: Record<string, string>,
  current?: Record<string, string>,
): void {
  const state = stateOf(session)
  const target = session as unknown as Record<string, unknown>
  // `cookie` is the session's own (the express-session drop-in shows it among the keys), not data.
  for (const key of Object.keys(session))
    if (!Object.hasOwn(texts, key) && key !== 'cookie') delete target[key]
  if (current === undefined) {
    parseOnto(target, state.id, texts)
  } else {
    for (const key of Object.keys(texts)) {
      if (key === '__proto__' || (Object.hasOwn(current, key) && current[key] === texts[key]))
        continue
      parseOne(target, state.id, key, texts[key]!)
    }
  }
  state.baseline = texts
}

/** Parses each key's JSON text onto `target`. *
 * @example
 * ```ts
 * parseOnto(session, id, { cart: '[1,2]' }) // session.cart is [1, 2]
 * ```
 */
export function parseOnto(
  target: Record<string, unknown>,
  id: string,
  texts: Record<string, string>,
): void {
  for (const key in texts) {
    // Never let stored data reach a prototype.
    if (!Object.hasOwn(texts, key) || key === '__proto__') continue
    parseOne(target, id, key, texts[key]!)
  }
}

function parseOne(target: Record<string, unknown>, id: string, key: string, text: string): void {
  try {
    target[key] = JSON.parse(text)
  } catch (cause) {
    throw new StoreError(`session ${id}: stored key "${key}" is not valid JSON`, {
      cause,
      code: 'ECORRUPT',
    })
  }
}
