/**
 * Bounds every store call in time and fails fast while Redis is seen to be down.
 *
 * - Bound: a call settles by its deadline, with a StoreError if Redis has not answered. Both
 *   clients queue commands while they reconnect, so without a bound a request would wait for
 *   the reconnect. One timer serves every call in flight (armed at the earliest deadline), so a
 *   call costs a list entry, not a timer of its own.
 * - Fail fast: once a call times out or the connection fails, Redis counts as down. Then one
 *   call at a time goes to Redis as a probe, and every other call fails at once with code
 *   `EUNAVAILABLE` without sending anything. The first answer from Redis ends it, so recovery is
 *   seen within a round trip of Redis returning, and an outage costs one command in flight.
 */
import { StoreError } from '../../lib/store.js'

interface Pending {
  at: number
  expire: () => void
  prev: Pending | undefined
  next: Pending | undefined
}

export class CallGuard {
  readonly #isReply: (err: unknown) => boolean
  #head: Pending | undefined
  #timer: NodeJS.Timeout | undefined
  #armedAt = Infinity
  #down = false
  #probing = false

  /** `isReply(err)`: the error is Redis's answer (so Redis is up), not a connection failure. */
  constructor(isReply: (err: unknown) => boolean) {
    this.#isReply = isReply
  }

  /** True while Redis counts as down. */
  get down(): boolean {
    return this.#down
  }

  /**
   * Runs `work`, settling by epoch ms `until`: with its result, or with `timedOut()` then.
   * A failure that is not a StoreError becomes one (status 503), described by `describe`.
   */
  run<T>(until: number, timedOut: () => StoreError, describe: (err: unknown) => StoreError, work: () => Promise<T>): Promise<T> {
    let probe = false
    if (this.#down) {
      if (this.#probing) {
        return Promise.reject(new StoreError('RedisStore: Redis did not answer a moment ago; failing at once until it does (one call in flight checks)', { code: 'EUNAVAILABLE' }))
      }
      this.#probing = probe = true
    }
    return new Promise<T>((resolve, reject) => {
      let settled = false
      const entry: Pending = {
        at: until,
        expire: () => {
          settled = true
          if (probe) this.#probing = false
          this.#down = true
          reject(timedOut())
        },
        prev: undefined,
        next: undefined,
      }
      this.#add(entry)
      const done = (answered: boolean) => {
        settled = true
        this.#remove(entry)
        if (probe) this.#probing = false
        this.#down = !answered
      }
      let running: Promise<T>
      try {
        running = work()
      } catch (err) {
        running = Promise.reject(err)
      }
      running.then(
        (value) => {
          if (settled) return
          done(true)
          resolve(value)
        },
        (err: unknown) => {
          // After the bound nobody waits for it; a late failure is dropped here, never unhandled.
          if (settled) return
          done(err instanceof StoreError || this.#isReply(err))
          reject(err instanceof StoreError ? err : describe(err))
        },
      )
    })
  }

  #add(entry: Pending): void {
    entry.next = this.#head
    if (this.#head) this.#head.prev = entry
    this.#head = entry
    if (entry.at < this.#armedAt) this.#arm(entry.at)
  }

  #remove(entry: Pending): void {
    if (entry.prev) entry.prev.next = entry.next
    else if (this.#head === entry) this.#head = entry.next
    if (entry.next) entry.next.prev = entry.prev
    entry.prev = entry.next = undefined
    // The timer stays armed: when it fires it finds the next deadline, or stops.
  }

  #arm(at: number): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#armedAt = at
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, at - Date.now()))
    // It may outlive the calls it was armed for; it must never keep the process alive.
    this.#timer.unref()
  }

  #fire(): void {
    this.#timer = undefined
    this.#armedAt = Infinity
    const now = Date.now()
    let next = Infinity
    for (let entry = this.#head; entry; ) {
      const following = entry.next
      if (entry.at <= now) {
        this.#remove(entry)
        entry.expire()
      } else if (entry.at < next) {
        next = entry.at
      }
      entry = following
    }
    if (next !== Infinity) this.#arm(next)
  }
}
