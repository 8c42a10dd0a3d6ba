/**
 * Hand-written express-session stores, each named for the one way it behaves. They keep
 * sessions as JSON text in a Map, as real stores serialize them.
 */
import { EventEmitter } from 'node:events'

type Callback = (err?: any, value?: any) => void

/** Calls back in the same tick: express-session's contract allows it, and some stores do it. */
export class SyncCallbackStore extends EventEmitter {
  readonly sessions = new Map<string, string>()
  readonly calls: string[] = []

  /** How every answer reaches the caller; subclasses change only this. */
  protected reply(callback: Callback | undefined, err: unknown, value?: unknown): void {
    callback?.(err, value)
  }

  get(sid: string, callback: Callback): void {
    this.calls.push(`get ${sid}`)
    const text = this.sessions.get(sid)
    this.reply(callback, null, text === undefined ? undefined : JSON.parse(text))
  }

  set(sid: string, session: object, callback?: Callback): void {
    this.calls.push(`set ${sid}`)
    this.sessions.set(sid, JSON.stringify(session))
    this.reply(callback, null)
  }

  touch(sid: string, session: { cookie?: unknown }, callback?: Callback): void {
    this.calls.push(`touch ${sid}`)
    const text = this.sessions.get(sid)
    if (text !== undefined)
      this.sessions.set(sid, JSON.stringify({ ...JSON.parse(text), cookie: session.cookie }))
    this.reply(callback, null)
  }

  destroy(sid: string, callback?: Callback): void {
    this.calls.push(`destroy ${sid}`)
    this.sessions.delete(sid)
    this.reply(callback, null)
  }

  all(callback: Callback): void {
    const all: Record<string, unknown> = {}
    for (const [sid, text] of this.sessions) all[sid] = JSON.parse(text)
    this.reply(callback, null, all)
  }

  length(callback: Callback): void {
    this.reply(callback, null, this.sessions.size)
  }

  clear(callback?: Callback): void {
    this.sessions.clear()
    this.reply(callback, null)
  }
}

/** Calls back on a later turn of the event loop, after `delay` ms. */
export class LateCallbackStore extends SyncCallbackStore {
  constructor(readonly delay = 5) {
    super()
  }
  protected override reply(callback: Callback | undefined, err: unknown, value?: unknown): void {
    setTimeout(() => callback?.(err, value), this.delay)
  }
}

/** No touch() and no TTL of its own: the adapter must keep and check the expiry itself. */
export class NoTouchStore extends SyncCallbackStore {
  constructor() {
    super()
    Object.defineProperty(this, 'touch', { value: undefined })
  }
  protected override reply(callback: Callback | undefined, err: unknown, value?: unknown): void {
    setImmediate(() => callback?.(err, value))
  }
}

/** Answers, then calls back a second time with an error (a buggy store). */
export class DoubleCallbackStore extends SyncCallbackStore {
  protected override reply(callback: Callback | undefined, err: unknown, value?: unknown): void {
    callback?.(err, value)
    setImmediate(() => callback?.(new Error('second callback')))
  }
}

/** Every call fails while `failing` is true, as a store whose server is down. */
export class FailingStore extends SyncCallbackStore {
  failing = true
  protected override reply(callback: Callback | undefined, err: unknown, value?: unknown): void {
    setImmediate(() =>
      this.failing
        ? callback?.(
            Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), {
              code: 'ECONNREFUSED',
            }),
          )
        : callback?.(err, value),
    )
  }
}

/** Never calls back while `silent` is true, as a store waiting on a dead connection. */
export class SilentStore extends SyncCallbackStore {
  silent = true
  protected override reply(callback: Callback | undefined, err: unknown, value?: unknown): void {
    if (!this.silent) setImmediate(() => callback?.(err, value))
  }
}

/** get() of an unknown id fails with ENOENT, as session-file-store's does. */
export class EnoentStore extends SyncCallbackStore {
  override get(sid: string, callback: Callback): void {
    const text = this.sessions.get(sid)
    if (text === undefined) {
      setImmediate(() =>
        callback(
          Object.assign(new Error(`ENOENT: no such file or directory, open '${sid}.json'`), {
            code: 'ENOENT',
          }),
        ),
      )
    } else {
      setImmediate(() => callback(null, JSON.parse(text)))
    }
  }
}

/** Throws synchronously from every method instead of calling back. */
export class ThrowingStore extends SyncCallbackStore {
  protected override reply(): void {
    throw new Error('store is broken')
  }
}

/** Returns a rejected promise and never calls back (a half-converted promise store). */
export class RejectingStore extends SyncCallbackStore {
  override get(): Promise<never> {
    return Promise.reject(new Error('rejected without calling back'))
  }
}

/** Emits express-session's 'disconnect' and 'connect' events on demand; works otherwise. */
export class DisconnectingStore extends SyncCallbackStore {
  disconnect(): void {
    this.emit('disconnect')
  }
  reconnect(): void {
    this.emit('connect')
  }
}
