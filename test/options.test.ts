import { randomBytes } from 'node:crypto'
import Redis from 'ioredis'
import session, { MemoryStore } from '../entries/index'
import { MemoryStore as ExpressSessionMemoryStore } from '../entries/express-session'

describe('session() options are validated at setup', () => {
  it.each([
    [{ secret: '' }, /secret must be a non-empty string or Buffer, or a non-empty array/],
    [{ secret: [] }, /secret must be a non-empty string or Buffer, or a non-empty array/],
    [{ secret: ['ok', 1] }, /secret must be a non-empty string/],
    [{ secret: 's', name: 'bad name' }, /name must be a cookie name token/],
    [{ secret: 's', resave: 'yes' }, /resave must be true or false/],
    [{ secret: 's', rolling: 1 }, /rolling must be true or false/],
    [{ secret: 's', saveUninitialized: null }, /saveUninitialized must be true or false/],
    [{ secret: 's', proxy: 'true' }, /proxy must be true or false/],
    [{ secret: 's', unset: 'drop' }, /unset must be "destroy" or "keep"/],
    [{ secret: 's', absoluteTimeout: -5 }, /absoluteTimeout must be a positive number/],
    [{ secret: 's', idleTimeout: Infinity }, /idleTimeout must be a positive number/],
    [{ secret: 's', maxSize: 0 }, /maxSize must be a positive number/],
    [{ secret: 's', saveTimeout: 0 }, /saveTimeout must be a positive number/],
    [{ secret: 's', saveTimeout: '2s' }, /saveTimeout must be a positive number/],
    [{ secret: 's', genid: 'uuid' }, /genid must be a function/],
    [{ secret: 's', cookie: 'secure' }, /cookie must be an object of attributes or a function/],
    [{ secret: 's', cookie: { maxAge: -1 } }, /maxAge must be a number/],
    [{ secret: 's', name: '__Host-sid' }, /"__Host-" cookie needs cookie.secure: true/],
    [
      { secret: 's', saveUnitialized: true },
      /unknown option "saveUnitialized" \(did you mean "saveUninitialized"\?\)/,
    ],
    [
      { secret: 's', cookie: { httponly: false } },
      /session cookie "connect.sid": unknown option "httponly" \(did you mean "httpOnly"\?\)/,
    ],
    [
      { secret: 's', cookie: { maxage: 1000 } },
      /unknown option "maxage" \(did you mean "maxAge"\?\)/,
    ],
    [
      { secret: 's', cookie: { sameSIte: 'lax' } },
      /unknown option "sameSIte" \(did you mean "sameSite"\?\)/,
    ],
    [
      { secret: 's', cookie: { signed: true } },
      /unknown option "signed"\. Known options: maxAge, domain, path, httpOnly/,
    ],
    [
      { secret: 's', store: { get() {}, set() {}, destroy() {} } },
      /wrap it: session\(adaptLegacyStore\(store\), options\)/,
    ],
  ])('rejects %j', (options, message) => {
    expect(() => session(options as never)).toThrow(TypeError)
    expect(() => session(options as never)).toThrow(message)
  })

  it('rejects a store given twice', () => {
    expect(() => session(new MemoryStore(), { secret: 's', store: new MemoryStore() })).toThrow(
      /pass the store once/,
    )
  })

  it('accepts both call forms and a missing secret (cookie-parser may supply req.secret)', () => {
    const store = new MemoryStore()
    expect(typeof session(store, { secret: 's' })).toBe('function')
    expect(typeof session({ secret: ['a', 'b'], store })).toBe('function')
    expect(typeof session(store)).toBe('function')
    expect(session(store).name).toBe('concordSession')
  })
})

describe('JavaScript mistakes with the first argument fail at setup, saying what to do', () => {
  const options = { secret: 's' }

  it.each([
    ['{}', {}],
    ['null', null],
    ['undefined', undefined],
    ['an array', []],
  ])('session(%s, options) is a TypeError, not "no secret" on every request', (_name, first) => {
    expect(() => session(first as never, options)).toThrow(TypeError)
    expect(() => session(first as never, options)).toThrow(
      /the first argument must be a Store .*or only the options: session\(options\)/,
    )
  })

  it('an express-session store as the first argument: wrap it with adaptLegacyStore, or give it to the drop-in as options.store', () => {
    const legacy = new ExpressSessionMemoryStore()
    for (const call of [() => session(legacy as never, options), () => session(legacy as never)]) {
      expect(call).toThrow(TypeError)
      expect(call).toThrow(
        /express-session store .*session\(adaptLegacyStore\(store\), options\).*options\.store/,
      )
    }
    legacy.close()
  })

  it('an ioredis client as the first argument: wrap it in a RedisStore', () => {
    const client = new Redis({ lazyConnect: true })
    try {
      expect(() => session(client as never, options)).toThrow(
        /Redis client, not a session store.*new RedisStore\(\{ client \}\)/,
      )
      expect(() => session(client as never)).toThrow(/Redis client/)
    } finally {
      client.disconnect()
    }
  })
})

describe('secrets', () => {
  it('accepts a Buffer, alone or in an array, as express-session does', () => {
    expect(typeof session({ secret: randomBytes(32) })).toBe('function')
    expect(typeof session({ secret: [randomBytes(32), 'old'] })).toBe('function')
    expect(() => session({ secret: Buffer.alloc(0) })).toThrow(/non-empty string or Buffer/)
  })
})
