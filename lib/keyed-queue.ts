/**
 * Runs tasks one at a time per key, in arrival order. The middleware saves one session's
 * concurrent requests through it, so inside one process saves never race each other in the
 * store: each one starts from the previous one's result (see RecentSaves).
 *
 * @example
 * ```ts
 * const queue = new KeyedQueue()
 * // saveB starts after saveA settles:
 * await Promise.all([queue.run('sid', saveA), queue.run('sid', saveB)])
 * ```
 */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<void>>()

  /**
   * Runs `task` once every earlier task of `key` has settled; `waited` says whether it had to
   * wait.
   */
  run<T>(key: string, task: (waited: boolean) => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key)
    const result = previous ? previous.then(() => task(true)) : task(false)
    const tail = result.then(settled, settled)
    this.#tails.set(key, tail)
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    })
    return result
  }

  /** Keys with a task queued or running; for tests and leak checks. */
  get size(): number {
    return this.#tails.size
  }
}

function settled(): void {}

/**
 * Runs one batch at a time per key: what arrives for a key while its batch runs waits, and all
 * of it runs next as one batch. The middleware writes a session's concurrent saves this way, so
 * a burst of requests on one session costs a few store writes rather than one each.
 *
 * @example
 * ```ts
 * const saves = new BatchQueue<string>((key, items, queued) => writeAll(key, items))
 * saves.add('sid', 'a') // runs now, alone
 * saves.add('sid', 'b') // these two wait for it,
 * saves.add('sid', 'c') // then run together
 * ```
 */
export class BatchQueue<T> {
  /** A key is present while a batch of it runs; its value is what waits for the next one. */
  readonly #waiting = new Map<string, T[] | null>()

  constructor(
    /**
     * Writes one batch. `queued` says whether its items waited behind another batch.
     * It must not reject.
     */
    readonly runBatch: (key: string, items: T[], queued: boolean) => Promise<void>,
  ) {}

  add(key: string, item: T): void {
    if (!this.#waiting.has(key)) {
      this.#waiting.set(key, null)
      this.#run(key, [item], false)
      return
    }
    const waiting = this.#waiting.get(key)
    if (waiting) waiting.push(item)
    else this.#waiting.set(key, [item])
  }

  #run(key: string, items: T[], queued: boolean): void {
    const next = (): void => {
      const waiting = this.#waiting.get(key)
      if (!waiting) {
        this.#waiting.delete(key)
        return
      }
      this.#waiting.set(key, null)
      this.#run(key, waiting, true)
    }
    this.runBatch(key, items, queued).then(next, next)
  }

  /** Whether a batch of `key` is running (what is added for it now waits). */
  busy(key: string): boolean {
    return this.#waiting.has(key)
  }

  /** Keys with a batch running; for tests and leak checks. */
  get size(): number {
    return this.#waiting.size
  }
}
