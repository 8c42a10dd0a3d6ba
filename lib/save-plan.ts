/**
 * Planning a save: what one request's session would write, measured against what it loaded.
 */
import { changesSince, SessionDataError } from './changes.js'
import type { Session } from './session.js'
import { cookieChanged, cookieOverrides } from './session-cookie.js'
import { NO_KEYS, NO_TEXTS, stateOf, type SavePlan, type State } from './session-state.js'

/**
 * What a save would write, or null when there is nothing to write (no object is built then).
 * `always`: write even when nothing changed (an explicit `save()`).
 *
 * @example
 * ```ts
 * const plan = planSave(req.session, false)
 * if (plan) await writePlan(req.session, plan)
 * ```
 */
export function planSave(session: Session, always: boolean): SavePlan | null {
  const state = stateOf(session)
  const { options } = state.host
  const cookie = state.cookie
  const cookieDiffers =
    cookieChanged(cookie) &&
    JSON.stringify(cookieOverrides(cookie)) !== JSON.stringify(state.savedCookie)
  const userChanged = state.userId !== state.savedUserId
  const diff = changesSince(session, state.baseline)
  if (typeof diff === 'number') {
    checkSize(state, diff)
    if (
      !cookieDiffers &&
      !userChanged &&
      state.ttlSets === undefined &&
      !always &&
      !(state.version === null
        ? options.saveUninitialized
        : options.resave && !state.savedThisRequest)
    ) {
      return null
    }
    return {
      set: NO_TEXTS,
      unset: NO_KEYS,
      texts: state.baseline,
      size: diff,
      cookie: cookieOverrides(cookie),
      cookieChanged: cookieDiffers,
      userChanged,
    }
  }
  checkSize(state, diff.size)
  return {
    set: diff.set,
    unset: diff.unset,
    texts: diff.texts,
    size: diff.size,
    cookie: cookieOverrides(cookie),
    cookieChanged: cookieDiffers,
    userChanged,
  }
}

function checkSize(state: State, size: number): void {
  if (size <= state.host.options.maxSize) return
  throw new SessionDataError(
    `session ${state.id} is ${size} characters of JSON, ` +
      `over maxSize ${state.host.options.maxSize}; ` +
      'keep large data elsewhere and store a reference in the session',
    { code: 'ESESSIONTOOLARGE' },
  )
}
