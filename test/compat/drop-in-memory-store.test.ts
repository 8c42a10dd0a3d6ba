import { MemoryStore } from '../../entries/express-session.js'
import { useFakeDate } from '../support/clock.js'

type Callback = (err?: any, value?: any) => void

/** Calls a callback-API method and resolves with its value. */
function call<T>(fn: (cb: Callback) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))))
}

describe("compat MemoryStore: express-session's callback API", () => {
  const clock = useFakeDate()
  let store: MemoryStore
  beforeEach(() => {
    store = new MemoryStore()
  })
  afterEach(() => store.close())

  const session = (expiresIn: number | null, data: Record<string, unknown> = {}) => ({
    cookie: {
      originalMaxAge: expiresIn,
      expires: expiresIn === null ? null : new Date(Date.now() + expiresIn),
      path: '/',
      httpOnly: true,
    },
    ...data,
  })

  it("get, set, destroy, length, all and clear, calling back asynchronously as express-session's does", async () => {
    let sync = true
    const done = call((cb) => store.set('a', session(60_000, { views: 1 }), cb)).then(() => sync)
    sync = false
    expect(await done).toBe(false)
    await call((cb) => store.set('b', session(null), cb))
    expect(await call((cb) => store.get('a', cb))).toMatchObject({
      views: 1,
      cookie: { originalMaxAge: 60_000 },
    })
    expect(await call((cb) => store.get('nope', cb))).toBeUndefined()
    expect(await call((cb) => store.length(cb))).toBe(2)
    expect(Object.keys(await call<Record<string, unknown>>((cb) => store.all(cb))).sort()).toEqual([
      'a',
      'b',
    ])
    await call((cb) => store.destroy('a', cb))
    expect(await call((cb) => store.get('a', cb))).toBeUndefined()
    await call((cb) => store.clear(cb))
    expect(await call((cb) => store.length(cb))).toBe(0)
  })

  it('expires a session at its cookie.expires, and one without an expiry after ttl (express-session never does)', async () => {
    const short = new MemoryStore({ ttl: 100 })
    try {
      await call((cb) => short.set('dated', session(100), cb))
      await call((cb) => short.set('undated', session(null), cb))
      clock.advance(99)
      expect(await call((cb) => short.get('dated', cb))).toBeDefined()
      expect(await call((cb) => short.get('undated', cb))).toBeDefined()
      clock.advance(101)
      expect(await call((cb) => short.get('dated', cb))).toBeUndefined()
      expect(await call((cb) => short.get('undated', cb))).toBeUndefined()
      expect(await call((cb) => short.length(cb))).toBe(0)
    } finally {
      short.close()
    }
  })

  it('touch replaces the stored cookie (and so the expiry), leaves the data, and does not create', async () => {
    await call((cb) => store.set('a', session(100, { views: 3 }), cb))
    await call((cb) => store.touch('a', { cookie: session(60_000).cookie }, cb))
    await call((cb) => store.touch('unknown', { cookie: session(60_000).cookie }, cb))
    clock.advance(150)
    expect(await call((cb) => store.get('a', cb))).toMatchObject({
      views: 3,
      cookie: { originalMaxAge: 60_000 },
    })
    expect(await call((cb) => store.get('unknown', cb))).toBeUndefined()
  })

  it('reports a session that cannot be serialized to the set callback', async () => {
    const cyclic: Record<string, unknown> = { cookie: {} }
    cyclic.self = cyclic
    await expect(call((cb) => store.set('c', cyclic, cb))).rejects.toThrow(/circular/i)
  })

  it('rejects a ttl or checkPeriod that is not a positive number, saying which', () => {
    expect(() => new MemoryStore({ ttl: 0 })).toThrow(
      'MemoryStore: ttl must be a positive number of ms, got 0',
    )
    expect(() => new MemoryStore({ checkPeriod: -1 })).toThrow(
      /checkPeriod must be a positive number/,
    )
  })
})
