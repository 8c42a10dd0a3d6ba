/**
 * A MemoryStore that makes requests overlap for real: it can hold the middleware's session loads
 * at a barrier until a given number have read the session, so they all start from the same
 * version before any of them saves. It counts the save conflicts that follow, which the core
 * resolves by replaying each request's changes onto the newer version.
 */
import type { LoadOptions, SaveResult, SessionChange, SessionRecord } from '../../entries/index.js'
import { MemoryStore } from '../../entries/index.js'

export class OverlapStore extends MemoryStore {
  conflicts = 0
  #barrier: { size: number; waiting: (() => void)[]; done: (filled: boolean) => void } | undefined

  /**
   * Holds the next `size` session loads (the middleware's, which touch) until all have arrived.
   * Resolves true when they did, or false if fewer arrived within `ms` (they are let go then).
   */
  holdLoads(size: number, ms = 5000): Promise<boolean> {
    return new Promise((resolve) => {
      const release = (filled: boolean) => {
        clearTimeout(timer)
        const barrier = this.#barrier
        this.#barrier = undefined
        barrier?.waiting.forEach((go) => go())
        resolve(filled)
      }
      const timer = setTimeout(() => release(false), ms)
      this.#barrier = { size, waiting: [], done: release }
    })
  }

  override async load(id: string, options?: LoadOptions): Promise<SessionRecord | null> {
    const record = await super.load(id, options)
    const barrier = this.#barrier
    if (barrier && options?.touchAt !== undefined) {
      await new Promise<void>((go) => {
        barrier.waiting.push(go)
        if (barrier.waiting.length >= barrier.size) barrier.done(true)
      })
    }
    return record
  }

  override async save(id: string, change: SessionChange): Promise<SaveResult> {
    const result = await super.save(id, change)
    if (!result.ok && result.reason === 'conflict') this.conflicts++
    return result
  }
}
