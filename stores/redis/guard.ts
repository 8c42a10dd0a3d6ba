/**
 * Bounds every store call in time and fails fast while Redis is seen to be down.
 *
 * - Bound: a call settles by its deadline, with a StoreError if Redis has not answered. Both
 *   clients queue commands while they reconnect, so without a bound a request would wait for
 *   the reconnect. One timer serves every call in flight (armed at the earliest deadline), so a
 *   call costs a list entry, not a timer of its own.
 * - Fail fast: once a call times out or the connection fails, Redis counts as down. Every call
 *   then fails at once with code `EUNAVAILABLE`, sending nothing, and starts a PING if none is
 *   in flight. The first answer from Redis ends it: recovery is seen within a round trip of
 *   Redis returning, an outage costs one PING at a time, and no request waits out a timeout
 *   that an earlier one has already met.
 */
import { StoreError } from '../../lib/store.js'
import { toStoreError } from '../../lib/store-errors.js'

interface Pending {
  at: number
  expire: () => void
  prev: Pending | undefined
  next: Pending | undefined
}

export class CallGuard {
  readonly #isReply: (err: unknown) => boolean
  readonly #ping: (key: string) => Promise<unknown>
  readonly #timeout: number
  #head: Pending | undefined
  #timer: NodeJS.Timeout | undefined
  #armedAt = Infinity
  #down = false
  #probing = false

  /**
   * `isReply(err)`: the error is Redis's answer (so Redis is up), not a connection failure.
   * `ping(key)`: asks the server holding `key` for a PING. `timeout`: how long a PING may take.
   */
  constructor(
    isReply: (err: unknown) => boolean,
    ping: (key: string) => Promise<unknown>,
    timeout: number,
  ) {
    this.#isReply = isReply
    this.#ping = ping
    this.#timeout = timeout
  }

  /** True while Redis counts as down. */
  get down(): boolean {
    return this.#down
  }

  /**
   * Runs `work`, settling by epoch ms `until`: with its result, or then with a StoreError
   * (ETIMEDOUT) that says `what` of `key` took longer than `ms`. A failure that is not a
   * StoreError becomes one (status 503, code EREDIS) with the failure as its cause.
   */
  run<T>(what: string, key: string, until: number, ms: number, work: () => Promise<T>): Promise<T> {
    if (this.#down) {
      if (!this.#probing) this.#probe(key)
      return Promise.reject(
        new StoreError(
          'RedisStore: Redis did not answer a moment ago; failing at once until it answers a PING',
          { code: 'EUNAVAILABLE' },
        ),
      )
    }
    return new Promise<T>((resolve, reject) => {
      let settled = false
      const entry = this.#track(until, () => {
        settled = true
        this.#down = true
        reject(
          new StoreError(
            `RedisStore: ${what} ${key} timed out after ${ms} ms (is Redis reachable?)`,
            { code: 'ETIMEDOUT' },
          ),
        )
      })
      let running: Promise<T>
      try {
        running = work()
      } catch (err) {
        running = Promise.reject(err)
      }
      running.then(
        (value) => {
          if (settled) return
          this.#remove(entry)
          this.#down = false
          resolve(value)
        },
        (err: unknown) => {
          // After the bound nobody waits for it; a late failure is dropped here, never unhandled.
          if (settled) return
          this.#remove(entry)
          this.#down = !(err instanceof StoreError || this.#isReply(err))
          reject(err instanceof StoreError ? err : failed(what, key, err))
        },
      )
    })
  }

  /** One PING at a time while down; any answer from Redis, even an error reply, ends it. */
  #probe(key: string): void {
    this.#probing = true
    let settled = false
    const entry = this.#track(Date.now() + this.#timeout, () => {
      settled = true
      this.#probing = false
    })
    let ping: Promise<unknown>
    try {
      ping = this.#ping(key)
    } catch (err) {
      ping = Promise.reject(err)
    }
    ping.then(
      () => this.#answered(entry, settled, true),
      (err: unknown) => this.#answered(entry, settled, this.#isReply(err)),
    )
  }

  #answered(entry: Pending, settled: boolean, up: boolean): void {
    if (settled) return
    this.#remove(entry)
    this.#probing = false
    if (up) this.#down = false
  }

  #track(at: number, expire: () => void): Pending {
    const entry: Pending = { at, expire, prev: undefined, next: undefined }
    this.#add(entry)
    return entry
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
    for (let entry = this.#head; entry;) {
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

function failed(what: string, key: string, err: unknown): StoreError {
  return toStoreError(err, (why) => `RedisStore: ${what} ${key} failed: ${why}`, 'EREDIS')
}
