import session, { MemoryStore } from '../lib/index'

describe('session() options are validated at setup', () => {
  it.each([
    [{ secret: '' }, /secret must be a non-empty string or a non-empty array/],
    [{ secret: [] }, /secret must be a non-empty string or a non-empty array/],
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
    [{ secret: 's', saveUnitialized: true }, /unknown option "saveUnitialized"/],
    [{ secret: 's', store: { get() {}, set() {}, destroy() {} } }, /wrap it: session\(adaptLegacyStore\(store\), options\)/],
  ])('rejects %j', (options, message) => {
    expect(() => session(options as never)).toThrow(TypeError)
    expect(() => session(options as never)).toThrow(message)
  })

  it('rejects a store given twice', () => {
    expect(() => session(new MemoryStore(), { secret: 's', store: new MemoryStore() })).toThrow(/pass the store once/)
  })

  it('accepts both call forms and a missing secret (cookie-parser may supply req.secret)', () => {
    const store = new MemoryStore()
    expect(typeof session(store, { secret: 's' })).toBe('function')
    expect(typeof session({ secret: ['a', 'b'], store })).toBe('function')
    expect(typeof session(store)).toBe('function')
    expect(session(store).name).toBe('concordSession')
  })
})
