/**
 * Runs tasks one at a time per key, in arrival order. The middleware saves one session's
 * concurrent requests through it, so inside one process a save meets at most one version
 * conflict (from another process) instead of racing its siblings in a retry storm.
 *
 * @example
 * ```ts
 * const queue = new KeyedQueue()
 * await Promise.all([queue.run('sid', saveA), queue.run('sid', saveB)]) // saveB starts after saveA settles
 * ```
 */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<void>>()

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key)
    const result = previous ? previous.then(task) : task()
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
