/**
 * Wrapper stores for middleware tests, each named for what it does. They wrap a real
 * MemoryStore; nothing here imitates Redis or the file system.
 */
import type {
  LoadOptions,
  SaveResult,
  SessionChange,
  SessionRecord,
  Store,
} from '../../lib/store.js'
import { MemoryStore } from '../../stores/memory/store.js'

/** Passes every call to a MemoryStore and counts them by method. */
export class CountingStore implements Store {
  readonly inner = new MemoryStore()
  readonly calls = { load: 0, save: 0, touch: 0, destroy: 0 }
  readonly saves: SessionChange[] = []

  load(id: string, options?: LoadOptions) {
    this.calls.load++
    return this.inner.load(id, options)
  }
  save(id: string, change: SessionChange) {
    this.calls.save++
    this.saves.push(change)
    return this.inner.save(id, change)
  }
  touch(id: string, expiresAt: number) {
    this.calls.touch++
    return this.inner.touch(id, expiresAt)
  }
  destroy(id: string) {
    this.calls.destroy++
    return this.inner.destroy(id)
  }
  listByUser(userId: string) {
    return this.inner.listByUser(userId)
  }
  destroyByUser(userId: string) {
    return this.inner.destroyByUser(userId)
  }
  close() {
    return this.inner.close()
  }
}

/** A MemoryStore that can be switched off: every call then rejects as a dropped connection would. */
export class SwitchableOutageStore implements Store {
  readonly inner = new MemoryStore()
  down = false

  #check(): void {
    if (this.down)
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), {
        code: 'ECONNREFUSED',
      })
  }
  async load(id: string, options?: LoadOptions) {
    this.#check()
    return this.inner.load(id, options)
  }
  async save(id: string, change: SessionChange) {
    this.#check()
    return this.inner.save(id, change)
  }
  async touch(id: string, expiresAt: number) {
    this.#check()
    return this.inner.touch(id, expiresAt)
  }
  async destroy(id: string) {
    this.#check()
    return this.inner.destroy(id)
  }
}

/** Loads fine but every save rejects, as a full disk or a read-only replica would. */
export class SaveRejectingStore extends SwitchableOutageStore {
  override async save(): Promise<SaveResult> {
    throw new Error('EROFS: read-only file system')
  }
}

/** Throws synchronously from load instead of rejecting: a buggy third-party store. */
export class SyncThrowingStore extends SwitchableOutageStore {
  override load(): Promise<SessionRecord | null> {
    throw new Error('store exploded synchronously')
  }
}

/** Returns records whose data is not JSON, as a store with corrupt contents would. */
export class CorruptDataStore extends SwitchableOutageStore {
  override async load(id: string, options?: LoadOptions) {
    const record = await this.inner.load(id, options)
    return record && { ...record, data: { ...record.data, cart: '{not json' } }
  }
}

/** Delays every save, so the response would go out first if the middleware did not wait. */
export class SlowSavingStore extends SwitchableOutageStore {
  constructor(readonly delayMs: number) {
    super()
  }
  override async save(id: string, change: SessionChange) {
    await new Promise((resolve) => setTimeout(resolve, this.delayMs))
    return this.inner.save(id, change)
  }
}

/**
 * A gate the test opens (or fails) by hand: whatever passes through it waits until then.
 * `arrived(n)` resolves once n callers are waiting, so a test knows the state it set up holds.
 */
export class Gate {
  #release!: (err?: unknown) => void
  readonly #opened: Promise<void>
  #waiting = 0
  readonly #watchers: Array<{ n: number; resolve: () => void }> = []

  constructor() {
    this.#opened = new Promise<void>((resolve, reject) => {
      this.#release = (err) => (err === undefined ? resolve() : reject(err))
    })
    this.#opened.catch(() => {}) // failed gates are awaited by pass(), not here
  }

  async pass(): Promise<void> {
    this.#waiting++
    for (const watcher of this.#watchers) if (this.#waiting >= watcher.n) watcher.resolve()
    await this.#opened
  }

  arrived(n: number): Promise<void> {
    if (this.#waiting >= n) return Promise.resolve()
    return new Promise((resolve) => this.#watchers.push({ n, resolve }))
  }

  open(): void {
    this.#release()
  }

  fail(err: unknown): void {
    this.#release(err)
  }
}

/**
 * A MemoryStore that counts calls and conflicts, records each save's change and the time it
 * arrived, and can hold loads or saves at a gate.
 */
export class GatedStore implements Store {
  readonly calls = { load: 0, save: 0, touch: 0, destroy: 0 }
  conflicts = 0
  readonly saves: Array<{ change: SessionChange; at: number }> = []
  gates: { load?: Gate; save?: Gate } = {}

  constructor(readonly inner = new MemoryStore()) {}

  /** Holds every `method` call from now until the gate opens or fails. */
  hold(method: 'load' | 'save'): Gate {
    const gate = new Gate()
    this.gates[method] = gate
    return gate
  }

  release(method: 'load' | 'save'): void {
    delete this.gates[method]
  }

  async load(id: string, options?: LoadOptions) {
    this.calls.load++
    await this.gates.load?.pass()
    return this.inner.load(id, options)
  }
  async save(id: string, change: SessionChange) {
    this.calls.save++
    this.saves.push({ change, at: Date.now() })
    await this.gates.save?.pass()
    const result = await this.inner.save(id, change)
    if (!result.ok && result.reason === 'conflict') this.conflicts++
    return result
  }
  touch(id: string, expiresAt: number) {
    this.calls.touch++
    return this.inner.touch(id, expiresAt)
  }
  destroy(id: string) {
    this.calls.destroy++
    return this.inner.destroy(id)
  }
  close() {
    return this.inner.close()
  }
}
