import { EventEmitter } from 'node:events'
import { inherits } from 'node:util'
import { Store, type LegacyStore } from '../../entries/express-session.js'

type Callback = (err?: any, value?: any) => void

/** A store written the pre-class way, as session-file-store is: Store.call(this) and util.inherits. */
function OldStyleStore(this: LegacyStore & { data: Map<string, string> }) {
  Store.call(this as never)
  this.data = new Map()
}
inherits(OldStyleStore, Store)
Object.assign(OldStyleStore.prototype, {
  get(this: { data: Map<string, string> }, sid: string, cb: Callback) {
    const text = this.data.get(sid)
    setImmediate(cb, null, text ? JSON.parse(text) : null)
  },
  set(this: { data: Map<string, string> }, sid: string, sess: unknown, cb?: Callback) {
    this.data.set(sid, JSON.stringify(sess))
    cb?.()
  },
  destroy(this: { data: Map<string, string> }, sid: string, cb?: Callback) {
    this.data.delete(sid)
    cb?.()
  },
})
const OldStyle = OldStyleStore as unknown as new () => Store &
  LegacyStore & { data: Map<string, string> }

/** A store written as a class, as memorystore is: class extends session.Store. */
class ClassStore extends Store {
  constructor(readonly options: { x?: number } = {}) {
    super(options)
  }
}

describe('Store: the base class express-session stores extend', () => {
  it('can be called as a function (Store.call(this)) and extended as a class', () => {
    const old = new OldStyle()
    expect(old).toBeInstanceOf(Store)
    expect(old).toBeInstanceOf(EventEmitter)
    expect(typeof old.on).toBe('function')
    const modern = new ClassStore({ x: 1 })
    expect(modern).toBeInstanceOf(Store)
    expect(modern.options).toEqual({ x: 1 })
  })

  it("load() gets the session and hands it out with cookie.expires as a Date, without concord's bookkeeping", async () => {
    const store = new OldStyle()
    const expires = new Date(Date.now() + 60_000)
    store.data.set(
      'sid',
      JSON.stringify({
        cookie: { originalMaxAge: 60_000, expires, path: '/' },
        views: 2,
        __concord: { version: 1 },
      }),
    )
    const loaded = await new Promise<any>((resolve, reject) =>
      store.load('sid', (err, sess) => (err ? reject(err) : resolve(sess))),
    )
    expect(loaded.id).toBe('sid')
    expect(loaded.cookie.expires).toEqual(expires)
    expect(loaded.views).toBe(2)
    expect(Object.keys(loaded)).toEqual(['cookie', 'views'])
    await expect(
      new Promise((resolve, reject) =>
        store.load('unknown', (err, sess) => (err ? reject(err) : resolve(sess))),
      ),
    ).resolves.toBeUndefined()
  })

  it("regenerate() regenerates the request's session, or destroys the id when there is none", async () => {
    const store = new OldStyle()
    store.data.set('old', '{}')
    const regenerate = jest.fn((cb: Callback) => cb())
    await new Promise((resolve) =>
      store.regenerate({ sessionID: 'old', session: { regenerate } }, resolve),
    )
    expect(regenerate).toHaveBeenCalledTimes(1)
    await new Promise((resolve) => store.regenerate({ sessionID: 'old' }, resolve))
    expect(store.data.has('old')).toBe(false)
  })
})
