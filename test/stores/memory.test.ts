import { randomUUID } from 'node:crypto'
import { MemoryStore } from '../../stores/memory/store'
import { describeStore, newChange } from '../store-conformance'

describeStore('MemoryStore', async () => new MemoryStore(), {
  lifecycle: {
    atLoad: 'idle and absolute',
    prune: async (store) => (store as MemoryStore).sweep(),
  },
})

describe('MemoryStore', () => {
  it('rejects a max or sweep interval that is not a positive number, saying which', () => {
    expect(() => new MemoryStore({ max: 0 })).toThrow(/max must be a positive integer/)
    expect(() => new MemoryStore({ max: 1.5 })).toThrow(/max must be a positive integer/)
    expect(() => new MemoryStore({ sweepInterval: -1 })).toThrow(
      /sweepInterval must be a positive number/,
    )
  })

  it('evicts the least recently used session when max is reached', async () => {
    const store = new MemoryStore({ max: 2 })
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()]
    await store.save(a, newChange())
    await store.save(b, newChange())
    await store.load(a) // a is now more recent than b
    await store.save(c, newChange())
    expect(await store.load(a)).not.toBeNull()
    expect(await store.load(b)).toBeNull()
    expect(await store.load(c)).not.toBeNull()
    expect(await store.count()).toBe(2)
    await store.close()
  })

  it('sweeps expired sessions without being asked to load them, and keeps touched ones', async () => {
    const store = new MemoryStore()
    const now = Date.now()
    const expired = randomUUID()
    const touched = randomUUID()
    const live = randomUUID()
    await store.save(
      expired,
      newChange({ createdAt: now, expiresAt: now + 1000, idleTimeout: 1000, userId: 'u' }),
    )
    await store.save(
      touched,
      newChange({ createdAt: now, expiresAt: now + 1000, idleTimeout: 1000 }),
    )
    await store.save(
      live,
      newChange({ createdAt: now, expiresAt: now + 10_000, idleTimeout: 10_000 }),
    )
    await store.touch(touched, now + 5000)

    store.sweep(now + 2000)
    expect(await store.listByUser('u')).toEqual([])
    expect(await store.count()).toBe(2)
    expect(await store.load(touched)).not.toBeNull()

    store.sweep(now + 6000)
    expect(await store.count()).toBe(1)
    await store.close()
  })

  it('does not share objects with its callers: a loaded record can be mutated freely', async () => {
    const store = new MemoryStore()
    const id = randomUUID()
    await store.save(id, newChange({ set: { a: '1' }, cookie: { originalMaxAge: 5 } }))
    const first = await store.load(id)
    first!.data.a = '2'
    first!.cookie.originalMaxAge = 6
    expect(await store.load(id)).toMatchObject({ data: { a: '1' }, cookie: { originalMaxAge: 5 } })
    await store.close()
  })

  it('refuses a save past its deadline and writes nothing; one before it lands', async () => {
    const store = new MemoryStore()
    const id = randomUUID()
    const late = await store
      .save(id, newChange({ set: { a: '1' }, deadline: Date.now() - 1 }))
      .catch((err: unknown) => err)
    expect(late).toMatchObject({ name: 'StoreError', status: 503, code: 'ETIMEDOUT' })
    expect(await store.load(id)).toBeNull()
    expect(
      await store.save(id, newChange({ set: { a: '1' }, deadline: Date.now() + 60_000 })),
    ).toEqual({ ok: true, version: 1 })
    await store.close()
  })

  it('keeps a key named __proto__ as an ordinary key', async () => {
    const store = new MemoryStore()
    const id = randomUUID()
    await store.save(id, newChange({ set: JSON.parse('{"__proto__":"{\\"polluted\\":true}"}') }))
    const record = await store.load(id)
    expect(Object.keys(record!.data)).toEqual(['__proto__'])
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    await store.close()
  })

  it('keeps keys and values that hold a raw NUL exactly, through later saves too', async () => {
    const store = new MemoryStore()
    const id = randomUUID()
    // Not JSON text (JSON escapes U+0000), but a store must still give back what it was given.
    const odd = { 'a\u0000b': '"x"', plain: '1', 'nul-value': '"a\u0000b"' }
    await store.save(id, newChange({ set: odd }))
    expect((await store.load(id))!.data).toEqual(odd)
    await store.save(id, newChange({ set: { more: '2' }, unset: ['plain'], expectedVersion: 1 }))
    const { plain: _, ...rest } = odd
    expect((await store.load(id))!.data).toEqual({ ...rest, more: '2' })
    // The NUL gone again: the session is stored like any other and still reads back whole.
    await store.save(
      id,
      newChange({ unset: ['a\u0000b', 'nul-value'], set: { c: '3' }, expectedVersion: 2 }),
    )
    expect((await store.load(id))!.data).toEqual({ more: '2', c: '3' })
    await store.close()
  })

  it('keeps each session its own keys when sessions with the same keys share a key list', async () => {
    const store = new MemoryStore()
    const [a, b] = [randomUUID(), randomUUID()]
    await store.save(a, newChange({ set: { user: '"ann"', cart: '[1]' } }))
    await store.save(b, newChange({ set: { user: '"bob"', cart: '[2]' } }))
    await store.save(a, newChange({ set: { extra: 'true' }, unset: ['cart'], expectedVersion: 1 }))
    expect((await store.load(a))!.data).toEqual({ user: '"ann"', extra: 'true' })
    expect((await store.load(b))!.data).toEqual({ user: '"bob"', cart: '[2]' })
    await store.close()
  })

  it('writes changed values of existing keys in place, keeping order and others', async () => {
    const store = new MemoryStore()
    const [a, b] = [randomUUID(), randomUUID()]
    await store.save(a, newChange({ set: { user: '"ann"', cart: '[1]', n: '1' } }))
    await store.save(b, newChange({ set: { user: '"bob"', cart: '[2]', n: '1' } }))
    await store.save(a, newChange({ set: { n: '2', user: '"amy"' }, expectedVersion: 1 }))
    const record = await store.load(a)
    expect(record!.data).toEqual({ user: '"amy"', cart: '[1]', n: '2' })
    expect(Object.keys(record!.data)).toEqual(['user', 'cart', 'n'])
    expect(record!.version).toBe(2)
    // A value holding a raw NUL, then a new key, then in place again: each read back exactly.
    await store.save(a, newChange({ set: { cart: '"a\u0000"' }, expectedVersion: 2 }))
    expect((await store.load(a))!.data).toEqual({ user: '"amy"', cart: '"a\u0000"', n: '2' })
    await store.save(a, newChange({ set: { cart: '[3]', more: '3' }, expectedVersion: 3 }))
    await store.save(a, newChange({ set: { cart: '[4]' }, expectedVersion: 4 }))
    expect((await store.load(a))!.data).toEqual({ user: '"amy"', cart: '[4]', n: '2', more: '3' })
    expect((await store.load(b))!.data).toEqual({ user: '"bob"', cart: '[2]', n: '1' })
    await store.close()
  })

  it('reads back sessions with more distinct key sets than it shares lists for', async () => {
    const store = new MemoryStore()
    const ids = Array.from({ length: 1500 }, () => randomUUID())
    for (const [i, id] of ids.entries())
      await store.save(id, newChange({ set: { [`key-${i}`]: String(i), shared: '""' } }))
    for (const [i, id] of ids.entries())
      expect((await store.load(id))!.data).toEqual({ [`key-${i}`]: String(i), shared: '""' })
    await store.close()
  })

  it('stores empty strings and a session emptied of every key', async () => {
    const store = new MemoryStore()
    const id = randomUUID()
    await store.save(id, newChange({ set: { a: '', b: '' } }))
    expect((await store.load(id))!.data).toEqual({ a: '', b: '' })
    await store.save(id, newChange({ unset: ['a', 'b'], expectedVersion: 1 }))
    expect((await store.load(id))!.data).toEqual({})
    await store.close()
  })
})
