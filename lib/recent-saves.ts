/**
 * What this process last wrote for each recently saved session, so a save that loaded an older
 * version can replay onto it in memory instead of meeting it as a conflict in the store (one
 * round trip and one replay saved). Only this process's own writes are known here; another
 * process's write still shows up as a conflict from the store, as it must.
 *
 * Bounded by entries and by characters of JSON, least recently saved out first, so a burst of
 * large sessions cannot grow it without limit.
 */
import type { CookieOverrides } from './store.js'

/** The stored state right after one of this process's saves succeeded. */
export interface SavedState {
  version: number
  /** Every key's JSON text at that version. */
  data: Record<string, string>
  cookie: CookieOverrides
  userId: string | undefined
  createdAt: number
  /** Per-key expiries at that version. */
  keyExpires: Record<string, number>
  /** Characters of JSON in `data`, for the size bound. */
  size: number
}

/**
 * @example
 * ```ts
 * const recent = new RecentSaves(1000, 4_000_000)
 * const saved = { version: 3, data: { cart: '[]' }, cookie: {}, userId: undefined, createdAt,
 *   keyExpires: {} }
 * recent.remember('sid', { ...saved, size: 6 })
 * recent.newerThan('sid', 2) // that state: a save loaded at version 2 replays onto it
 * ```
 */
export class RecentSaves {
  readonly #states = new Map<string, SavedState>()
  #chars = 0
  /** The id remembered last, so the last one in the Map's order. */
  #newest: string | undefined = undefined

  constructor(
    readonly maxEntries = 1024,
    readonly maxChars = 4_000_000,
  ) {}

  /** This process's last save of `id` if it is newer than `version`, else undefined. */
  newerThan(id: string, version: number): SavedState | undefined {
    const state = this.#states.get(id)
    return state !== undefined && state.version > version ? state : undefined
  }

  remember(id: string, state: SavedState): void {
    const last = this.#newest === id ? this.#states.get(id) : undefined
    if (last !== undefined && this.#chars - last.size + state.size <= this.maxChars) {
      // The newest saved again (one busy session): replaced where it is, no delete and re-add.
      this.#states.set(id, state)
      this.#chars += state.size - last.size
      return
    }
    this.forget(id)
    if (state.size > this.maxChars) return
    this.#newest = id
    this.#states.set(id, state)
    this.#chars += state.size
    while (this.#states.size > this.maxEntries || this.#chars > this.maxChars) {
      const oldest = this.#states.keys().next().value as string
      this.forget(oldest)
    }
  }

  forget(id: string): void {
    const state = this.#states.get(id)
    if (state === undefined) return
    this.#states.delete(id)
    this.#chars -= state.size
  }

  get size(): number {
    return this.#states.size
  }
}
