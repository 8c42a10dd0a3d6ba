/**
 * The save engine: writes the saves of one session that queued up together as one store
 * write, replaying each request's changes onto the newest state known and retrying on a
 * conflict with another process. What a save writes is planned in save-plan.ts.
 */
import createDebug from 'debug'
import { ReplayOnto } from './changes.js'
import { channels, tracedDestroy, tracedSave } from './diagnostics.js'
import type { DestroyContext, SaveContext } from './diagnostics.js'
import { absoluteEnd, idleExpiry } from './expiry.js'
import type { Session } from './session.js'
import { diffTexts, onlyHeld, refreshData, replayLifetimes } from './save-data.js'
import {
  NO_EXPIRES,
  NO_KEYS,
  NO_TEXTS,
  stateOf,
  type PendingSave,
  type SavePlan,
  type State,
} from './session-state.js'
import type { CookieOverrides, SessionChange } from './store.js'
import { StoreError } from './store.js'
import { SessionLimitError } from './user-limit.js'
import { sleep } from './util.js'

const debug = createDebug('concord-session')

/**
 * Attempts at one save before a conflict is reported; each attempt replays onto fresher data.
 * Only other processes' writes conflict (this process's own are replayed onto in memory), and
 * the save's deadline bounds the attempts in time as well.
 */
const MAX_SAVE_ATTEMPTS = 30
/** Backoff between conflicting attempts: full jitter, doubling from this up to the cap. */
const BACKOFF_BASE_MS = 2
const BACKOFF_CAP_MS = 100

export function writePlan(session: Session, plan: SavePlan): Promise<void> {
  const state = stateOf(session)
  return new Promise<void>((resolve, reject) => {
    state.host.batches.add(state.id, { session, plan, resolve, reject })
  })
}

/** A stored state this process knows exactly: loaded, saved by it, or returned in a conflict. */
export interface Known {
  /** `null` for a session not saved yet. */
  version: number | null
  data: Record<string, string>
  cookie: CookieOverrides
  userId?: string | undefined
  createdAt: number
  keyExpires?: Record<string, number> | undefined
}

export function knownOf(state: State): Known {
  return {
    version: state.version,
    data: state.baseline,
    cookie: state.savedCookie,
    userId: state.savedUserId,
    createdAt: state.createdAt,
    keyExpires: state.keyExpires,
  }
}

/**
 * Writes the saves of one session that queued up while its previous write ran, as one store
 * write: each request's changes are replayed, in arrival order, onto the newest state this
 * process knows, so 50 concurrent requests on one session cost a handful of store round trips
 * rather than 50, and none of them meets another's write as a conflict. Each request's own
 * deadline still holds, and each learns the outcome of the write that carried its changes.
 */
export function commitSaves(saves: PendingSave[], queued: boolean): Promise<void> {
  // A new session (created by one request) is written on its own: its id may have to change.
  if (saves.length > 1 && saves.some((save) => stateOf(save.session).version === null))
    return settleEach(saves, queued)
  return settle(saves, queued)
}

async function settleEach(saves: PendingSave[], queued: boolean): Promise<void> {
  for (const save of saves) await settle([save], queued)
}

/** Writes `saves` and settles each one's promise. Never rejects. Promises, no async frame. */
function settle(saves: PendingSave[], queued: boolean): Promise<void> {
  let writing: Promise<Refused>
  if (!channels.save.hasSubscribers) writing = writeSaves(saves, queued, undefined)
  else {
    const { host, id, version } = stateOf(saves[0]!.session)
    let refused: Refused
    writing = tracedSave(host.idHashes, id, saves.length, version === null, async (trace) => {
      refused = await writeSaves(saves, queued, trace)
    }).then(() => refused)
  }
  return writing.then(
    (refused) => {
      for (const save of saves) {
        const error = refused?.get(save)
        if (error) save.reject(error)
        else save.resolve()
      }
    },
    (err: unknown) => {
      for (const save of saves) save.reject(err)
    },
  )
}

/** The saves whose sign-in `maxSessionsPerUser` refused, if any. */
type Refused = Map<PendingSave, SessionLimitError> | undefined

function notSavedInTime(state: State): StoreError {
  return new StoreError(
    `session ${state.id} was not saved within saveTimeout ` +
      `(${state.host.options.saveTimeout} ms); nothing was written`,
    { code: 'ETIMEDOUT' },
  )
}

/** Writes `saves`; resolves to the saves whose sign-in `maxSessionsPerUser` refused, if any. */
async function writeSaves(
  saves: PendingSave[],
  queued: boolean,
  trace: SaveContext | undefined,
): Promise<Map<PendingSave, SessionLimitError> | undefined> {
  let refused: Map<PendingSave, SessionLimitError> | undefined
  const first = stateOf(saves[0]!.session)
  const { store, options, guard, recent } = first.host
  // The store refuses the write after this, so a request answered "not saved" never is.
  const deadline = Date.now() + options.saveTimeout

  // Start from the newest state known: this process's own last save, or what a request loaded.
  let newest = first
  for (const save of saves) {
    const state = stateOf(save.session)
    if (state.version !== null && state.version > newest.version!) newest = state
  }
  let base = knownOf(newest)
  if (base.version !== null) {
    const mine = recent.newerThan(first.id, base.version)
    if (mine) base = mine
  }

  for (let attempt = 1; ; attempt++) {
    const now = Date.now()
    if (now >= deadline) throw notSavedInTime(first)
    const expectedVersion = base.version
    if (trace) trace.retries = (trace.attempts = attempt) - 1

    const next = buildAttempt(saves, base, now, deadline)
    if (next === null) {
      // Past its absolute timeout: the session ends rather than being written again.
      if (expectedVersion !== null) {
        await destroyInStore(first, 'expired')
        first.host.events?.expired(first.id, 'save', base.userId)
      }
      for (const save of saves) stateOf(save.session).ended = 'gone'
      if (trace) trace.outcome = 'expired'
      return refused
    }
    const { change } = next
    const id = first.id
    const result = await guard.call(() => store.save(id, change), 'save', id, queued)

    if (result.ok) {
      if (trace) {
        trace.outcome = 'saved'
        trace.version = result.version
      }
      recordSaved(saves, id, result, next)
      return refused
    }
    if (result.reason === 'gone') {
      dropGone(saves, id)
      if (trace) trace.outcome = 'gone'
      return refused
    }
    if (result.reason === 'userLimit') {
      // The sign-in is refused and nothing was written: undo the link in each request that
      // asked for it, fail those saves, and write the others' changes without it.
      debug('session %s: its user is at maxSessionsPerUser; the link was refused', id)
      refused ??= new Map()
      for (const save of saves) {
        if (!save.plan.userChanged) continue
        const state = stateOf(save.session)
        state.userId = state.savedUserId
        refused.set(save, new SessionLimitError(change.userId!, change.userLimit!.max))
      }
      saves = saves.filter((save) => !refused!.has(save))
      if (saves.length === 0) return refused
      continue
    }
    if (trace && result.reason === 'conflict') trace.conflicts++
    if (attempt >= MAX_SAVE_ATTEMPTS) {
      throw new StoreError(`session ${id}: gave up after ${attempt} conflicting saves`, {
        code: 'ECONFLICT',
      })
    }
    if (expectedVersion === null) {
      // The new id is taken (a custom genid repeated itself): never merge into another session.
      debug('new session id %s is taken: generating another', id)
      first.id = await first.host.generateId()
      if (trace) trace.sessionId = first.host.idHashes.get(first.id)
      continue
    }
    debug(
      "session %s: version %d was saved meanwhile, replaying this request's changes (attempt %d)",
      id,
      result.current.version,
      attempt,
    )
    base = result.current
    // Another process is writing this session too: back off with full jitter, so two writers
    // that keep meeting drift apart, but never past the deadline.
    if (attempt >= 2)
      await sleep(
        Math.min(
          Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt),
          Math.max(0, deadline - Date.now()),
        ),
      )
  }
}

/** After a successful write of `saves` to `id`: each request's session, `recent` and events. */
export function recordSaved(
  saves: PendingSave[],
  id: string,
  result: { version: number; evicted?: string[]; renewedTo?: string },
  done: Attempt,
): void {
  const first = stateOf(saves[0]!.session)
  const { recent } = first.host
  // The id was renewed while this request ran: the save followed it, and so does the cookie.
  const savedAs = result.renewedTo ?? id
  if (savedAs !== id) recent.forget(id)
  if (done.change.expectedVersion === null && !first.regenerated)
    first.host.events?.created(id, done.change.userId ?? undefined)
  applySaved(saves, savedAs, result.version, done)
  if (result.evicted) for (const other of result.evicted) recent.forget(other)
}

/** Destroyed or expired meanwhile: the saves are dropped, never bringing the session back. */
export function dropGone(saves: PendingSave[], id: string): void {
  debug('session %s was destroyed or expired while this request ran: dropping its save', id)
  stateOf(saves[0]!.session).host.recent.forget(id)
  for (const save of saves) stateOf(save.session).ended = 'gone'
}

export function destroyInStore(state: State, reason: DestroyContext['reason']): Promise<void> {
  const { host, id } = state
  host.recent.forget(id)
  return tracedDestroy(host.idHashes, id, reason, () =>
    host.guard.call(() => host.store.destroy(id), 'destroy', id),
  )
}

/** One attempt's write: the change for the store, and the state it leaves if it succeeds. */
export interface Attempt {
  change: SessionChange
  data: Record<string, string>
  keyExpires: Record<string, number>
}

/**
 * Every request's changes, in arrival order, onto `base`: the change to write, or null when
 * the session is past its absolute timeout. Synchronous, so the save's async frame stays small.
 */
export function buildAttempt(
  saves: PendingSave[],
  base: Known,
  now: number,
  deadline: number,
): Attempt | null {
  const { options } = stateOf(saves[0]!.session).host
  const { version: expectedVersion, createdAt } = base
  let data = base.data
  let set: Record<string, string> | undefined
  let unset: string[] | undefined
  let cookie = base.cookie
  let userId = base.userId ?? null
  let cookieFrom = stateOf(saves[saves.length - 1]!.session)
  let replay: ReplayOnto | undefined
  for (const save of saves) {
    const state = stateOf(save.session)
    const { plan } = save
    if (replay === undefined && state.baseline === data) {
      // Nothing landed since this request loaded: its own result stands as it is.
      data = plan.texts
      if (saves.length === 1) {
        set = plan.set
        unset = plan.unset
      }
      cookie = plan.cookie
      userId = state.userId ?? null
      cookieFrom = state
    } else {
      replay ??= new ReplayOnto(data)
      replay.apply(state.baseline, plan.set, plan.unset)
    }
    if (plan.cookieChanged) {
      cookie = plan.cookie
      cookieFrom = state
    }
    if (plan.userChanged) userId = state.userId ?? null
  }
  if (replay !== undefined) data = replay.texts()
  let keyExpires = base.keyExpires ?? NO_EXPIRES
  for (const save of saves)
    keyExpires = replayLifetimes(keyExpires, save.plan, stateOf(save.session).ttlSets)
  keyExpires = onlyHeld(keyExpires, data)
  if (expectedVersion === null) {
    set = data // a new session writes every key
    unset = NO_KEYS
  } else if (set === undefined || unset === undefined) {
    ;[set, unset] = diffTexts(base.data, data)
  }

  const idleTimeout = cookieFrom.cookie.originalMaxAge ?? options.idleTimeout
  if (absoluteEnd(createdAt, options.absoluteTimeout) <= now) return null
  const change: SessionChange = {
    set,
    unset,
    cookie,
    createdAt,
    idleTimeout,
    userId,
    expectedVersion,
    expiresAt: idleExpiry(now, idleTimeout, createdAt, options.absoluteTimeout),
    deadline,
  }
  const userLimit = options.maxSessionsPerUser
  if (userLimit && userId !== null && saves.some((save) => save.plan.userChanged))
    change.userLimit = userLimit
  // Sent when there are expiries to write, or stored ones to clear (then empty).
  if (keyExpires !== NO_EXPIRES || hasKeys(base.keyExpires)) change.keyExpires = keyExpires
  return { change, data, keyExpires }
}

/** After a successful write: each request's session is at the saved state, and so is `recent`. */
function applySaved(saves: PendingSave[], savedAs: string, version: number, done: Attempt): void {
  const { change, data, keyExpires } = done
  const { cookie, createdAt } = change
  const userId = change.userId ?? undefined
  for (const save of saves) {
    const state = stateOf(save.session)
    state.id = savedAs
    const { plan } = save
    state.version = version
    state.savedCookie = cookie
    state.savedUserId = state.userId = userId
    state.createdAt = createdAt
    state.keyExpires = keyExpires
    state.ttlSets = undefined
    state.savedThisRequest = true
    if (plan.set !== NO_TEXTS || plan.unset.length > 0 || plan.cookieChanged || plan.userChanged)
      state.changedThisRequest = true
    if (data === plan.texts) state.baseline = data
    else refreshData(save.session, data, plan.texts)
  }
  stateOf(saves[0]!.session).host.recent.remember(savedAs, {
    version,
    data,
    cookie,
    userId,
    createdAt,
    keyExpires,
    size: saves[saves.length - 1]!.plan.size,
  })
}

function hasKeys(object: Record<string, number> | undefined): boolean {
  if (object === undefined || object === NO_EXPIRES) return false
  for (const key in object) if (Object.hasOwn(object, key)) return true
  return false
}
