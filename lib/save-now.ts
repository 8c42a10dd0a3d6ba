/**
 * Saving in the request's own tick, for a store that answers saves so (an in-process store, see
 * `SavesNow`): a save with nothing of its session queued ahead of it is written at once, and the
 * response ends in the same tick, with no promise. It is the first attempt of the save engine
 * (save.ts), on the same base and with the same rules; whatever needs more than one attempt or
 * a wait goes through the save queue instead, before anything was written.
 */
import { channels } from './diagnostics.js'
import { buildAttempt, dropGone, knownOf, recordSaved } from './save.js'
import type { Session } from './session.js'
import { stateOf, type PendingSave, type SavePlan } from './session-state.js'

/**
 * Saves `plan` now if it can: true when that is done (written, or dropped because the session
 * was destroyed meanwhile), false when the caller must queue it (`writePlan`). Throws what the
 * save failed with, as the queued save would reject with it.
 *
 * Queued instead: while a save of the same id runs (so saves of one id stay in arrival order
 * and batch), while saves are traced, while the store is counted as down (the queue probes
 * it), and when the store answers a conflict, a refused sign-in, or nothing (then nothing was
 * written, and the queue's attempts go on from there). A session past its absolute timeout is
 * ended by the queue too.
 *
 * @example
 * ```ts
 * const plan = planSave(session, false)
 * if (plan && !saveInTick(session, plan)) await writePlan(session, plan)
 * ```
 */
export function saveInTick(session: Session, plan: SavePlan): boolean {
  const state = stateOf(session)
  const { host, id } = state
  const store = host.savesNow
  if (store === undefined || channels.save.hasSubscribers || host.batches.busy(id)) return false
  const deadline = Date.now() + host.options.saveTimeout
  // As the queue starts: from this process's own last save when it is newer than the load.
  const base =
    (state.version !== null && host.recent.newerThan(id, state.version)) || knownOf(state)
  const saves: PendingSave[] = [{ session, plan, resolve: ignore, reject: ignore }]
  const attempt = buildAttempt(saves, base, Date.now(), deadline)
  if (attempt === null) return false
  const result = host.guard.saveNow(store, id, attempt.change)
  if (result === undefined) return false
  if (result.ok) {
    recordSaved(saves, id, result, attempt)
    return true
  }
  if (result.reason !== 'gone') return false
  dropGone(saves, id)
  return true
}

function ignore(): void {}
