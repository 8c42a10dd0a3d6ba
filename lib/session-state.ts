/**
 * A session's private bookkeeping, and what it needs from its request: the types the Session
 * API, the save engine and the request lifecycle share. Holds no logic, so each of those files
 * can import it without importing one another.
 */
import type { CookieAttributes } from './cookie.js'
import type { SessionEvents } from './events.js'
import type { IdHashCache } from './id-hash-cache.js'
import type { BatchQueue } from './keyed-queue.js'
import type { ResolvedOptions } from './options.js'
import type { RecentSaves } from './recent-saves.js'
import type { Session } from './session.js'
import type { Cookie } from './session-cookie.js'
import type { StoreGuard } from './store-guard.js'
import type { CookieOverrides, SavesNow, Store } from './store.js'

/** What a session needs from the request it lives in. The request lifecycle provides it. */
export interface SessionHost {
  readonly store: Store
  readonly options: ResolvedOptions
  /** Saves of one id run one batch at a time through this queue (see commitSaves). */
  readonly batches: BatchQueue<PendingSave>
  /** The same store when it can answer a save in this tick (an in-process store). */
  readonly savesNow: (Store & SavesNow) | undefined
  /** Every store call goes through it: the save deadline, fail fast while the store is down. */
  readonly guard: StoreGuard
  /** This process's last saves, for replaying onto them without a store conflict. */
  readonly recent: RecentSaves
  /** The cookie defaults for this request, as configured (`secure` may be `'auto'`). */
  readonly cookieDefaults: CookieAttributes
  /** Whether the request arrived over HTTPS, for `secure: 'auto'`. Read only when needed. */
  readonly secure: boolean
  generateId(): Promise<string>
  /** Puts `session` on the request (after regenerate), or takes it off (after destroy). */
  attach(session: Session | undefined): void
  /** Lifecycle events for the `onEvent` listener; undefined without one. */
  readonly events: SessionEvents | undefined
  /** The keyed hashes of ids, for events and tracing. */
  readonly idHashes: IdHashCache
}

/** How this request's session ended, if it did. */
export type SessionEnd = 'destroyed' | 'gone'

export interface State {
  host: SessionHost
  id: string
  /** `null` until the session is first saved. */
  version: number | null
  createdAt: number
  /** Each key's JSON text as last loaded or saved: what changes are measured against. */
  baseline: Record<string, string>
  userId: string | undefined
  savedUserId: string | undefined
  /** The cookie overrides as last loaded or saved (never changed in place). */
  savedCookie: CookieOverrides
  cookie: Cookie
  /** Per-key expiries as last loaded or saved (never changed in place). */
  keyExpires: Record<string, number>
  /** Keys given a lifetime by this request, not saved yet: epoch ms by key. */
  ttlSets?: Record<string, number> | undefined
  /** Saved with a change during this request (decides whether the cookie is re-sent). */
  changedThisRequest: boolean
  /** Saved during this request: `resave` has nothing left to do unless something changed since. */
  savedThisRequest?: boolean
  ended: SessionEnd | undefined
  /** Made by regenerate: its first save is part of a `regenerated` event, not a `created` one. */
  regenerated?: boolean
}

/**
 * A session. Your data lives on it as ordinary properties (`req.session.cart = …`); the
 * methods below are on its prototype, and its bookkeeping is private, so neither shows up in
 * `Object.keys(req.session)` or in the stored data.
 *

/** What one save writes, planned from one request's session. */
export interface SavePlan {
  set: Record<string, string>
  unset: string[]
  texts: Record<string, string>
  size: number
  cookie: CookieOverrides
  cookieChanged: boolean
  userChanged: boolean
}

/** One save waiting its turn. */
export interface PendingSave {
  session: Session
  plan: SavePlan
  resolve(): void
  reject(err: unknown): void
}

/** No keys to write: shared and frozen, so an unchanged save builds no object. */
export const NO_TEXTS: Record<string, string> = Object.freeze({}) as Record<string, string>
/** No per-key expiries. */
export const NO_EXPIRES: Record<string, number> = Object.freeze({}) as Record<string, number>
/** No keys to delete. */
export const NO_KEYS: string[] = Object.freeze([]) as unknown as string[]

/**
 * A session's bookkeeping. Set once by the Session class, which keeps it in a private field;
 * module-internal, not API.
 */
export let stateOf: (session: Session) => State

/** @internal Called once by the Session class's static block. */
export function provideStateOf(accessor: (session: Session) => State): void {
  stateOf = accessor
}
