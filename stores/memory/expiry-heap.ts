/** A binary min-heap of (time, id), earliest first. */
export class ExpiryHeap {
  #times: number[] = []
  #ids: string[] = []

  get size(): number {
    return this.#times.length
  }

  peekAt(): number {
    return this.#times[0]!
  }

  peekId(): string {
    return this.#ids[0]!
  }

  push(at: number, id: string): void {
    const times = this.#times
    const ids = this.#ids
    let i = times.length
    times.push(at)
    ids.push(id)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (times[parent]! <= at) break
      times[i] = times[parent]!
      ids[i] = ids[parent]!
      i = parent
    }
    times[i] = at
    ids[i] = id
  }

  pop(): void {
    const times = this.#times
    const ids = this.#ids
    const lastAt = times.pop()!
    const lastId = ids.pop()!
    const n = times.length
    if (n === 0) return
    let i = 0
    for (;;) {
      let child = 2 * i + 1
      if (child >= n) break
      if (child + 1 < n && times[child + 1]! < times[child]!) child++
      if (times[child]! >= lastAt) break
      times[i] = times[child]!
      ids[i] = ids[child]!
      i = child
    }
    times[i] = lastAt
    ids[i] = lastId
  }

  clear(): void {
    this.#times = []
    this.#ids = []
  }
}
