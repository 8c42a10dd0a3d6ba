/**
 * Id renewal through the middleware: requests that straddle a renewal lose nothing and make no
 * second session; the old id is dead after the grace; renewal after N requests; setup checks.
 * Driven by gates and the test clock, never by waiting.
 */
import express from 'express'
import request, { type Response } from 'supertest'
import session, { MemoryStore } from '../entries/index'
import { adaptLegacyStore } from '../entries/express-session'
import type { SessionOptions } from '../lib/options'
import { useFakeDate } from './support/clock'
import { cookiePair, sessionCookie } from './support/http'
import { storedId } from './support/at-rest'

const SECRET = 'renew-secret'
const clock = useFakeDate()

interface Gate {
  opened: Promise<void>
  open(): void
}
function gate(): Gate {
  let open!: () => void
  const opened = new Promise<void>((resolve) => (open = resolve))
  return { opened, open }
}

/** An app whose /add requests can be held after the load: `?hold=name`. */
function shop(store: MemoryStore, renew: SessionOptions['renew']) {
  const arrived = new Map<string, Gate>()
  const release = new Map<string, Gate>()
  const app = express()
  app.use(session(store, { secret: SECRET, renew }))
  app.post('/add/:item', async (req, res) => {
    const hold = req.query.hold as string | undefined
    if (hold) {
      arrived.get(hold)!.open()
      await release.get(hold)!.opened
    }
    const data = req.session as unknown as { cart?: string[] }
    data.cart = [...(data.cart ?? []), req.params.item!]
    res.json({ id: req.session.id })
  })
  app.get('/read', (req, res) => {
    res.json({ id: req.session.id, cart: (req.session as unknown as { cart?: string[] }).cart })
  })
  /** Starts a held /add; resolves `loaded` once it has its session, `done` when it ends. */
  function held(name: string, item: string, cookie: string) {
    arrived.set(name, gate())
    release.set(name, gate())
    const done = request(app)
      .post(`/add/${item}?hold=${name}`)
      .set('Cookie', cookie)
      .then((res) => res)
    return { loaded: arrived.get(name)!.opened, release: () => release.get(name)!.open(), done }
  }
  return { app, held }
}

function idOf(res: Response): string {
  return (res.body as { id: string }).id
}

describe('renew: { every }', () => {
  it('renews once due; requests straddling it save into the renewed session; no second one', async () => {
    const store = new MemoryStore()
    const { app, held } = shop(store, { every: '15m', grace: '30s' })
    const first = await request(app).post('/add/tea')
    const oldCookie = cookiePair(sessionCookie(first))
    const oldId = idOf(first)

    // In flight with the old id, loaded before the renewal.
    const before = held('before', 'milk', oldCookie)
    await before.loaded

    clock.advance(16 * 60_000)
    const renewing = await request(app).post('/add/bread').set('Cookie', oldCookie)
    const newId = idOf(renewing)
    expect(newId).not.toBe(oldId)
    const newCookie = cookiePair(sessionCookie(renewing))
    expect(newCookie).not.toBe(oldCookie)

    // Arrives with the old cookie after the renewal, within the grace.
    const after = held('after', 'jam', oldCookie)
    await after.loaded
    before.release()
    after.release()
    const [beforeRes, afterRes] = await Promise.all([before.done, after.done])
    expect([beforeRes.status, afterRes.status]).toEqual([200, 200])
    // Both answer with the new id, and hand the browser the new cookie rather than the old one.
    expect([idOf(afterRes), cookiePair(sessionCookie(afterRes))]).toEqual([newId, newCookie])
    expect(cookiePair(sessionCookie(beforeRes))).toBe(newCookie)

    const read = await request(app).get('/read').set('Cookie', newCookie)
    expect(read.body.id).toBe(newId)
    expect([...read.body.cart].sort()).toEqual(['bread', 'jam', 'milk', 'tea'])
    expect(await store.count()).toBe(1)

    // Past the grace the old id is dead: a fresh session, and the renewed one is untouched.
    clock.advance(31_000)
    expect(await store.load(storedId(oldId, SECRET))).toBeNull()
    const late = await request(app).post('/add/cake').set('Cookie', oldCookie)
    expect(idOf(late)).not.toBe(oldId)
    expect(idOf(late)).not.toBe(newId)
    const kept = await request(app).get('/read').set('Cookie', newCookie)
    expect([...kept.body.cart].sort()).toEqual(['bread', 'jam', 'milk', 'tea'])
    expect(await store.count()).toBe(2)
  })

  it('does not renew before it is due, and counts from the last renewal', async () => {
    const store = new MemoryStore()
    const { app } = shop(store, { every: 10 * 60_000 })
    const first = await request(app).post('/add/tea')
    const cookie0 = cookiePair(sessionCookie(first))
    clock.advance(9 * 60_000)
    const same = await request(app).get('/read').set('Cookie', cookie0)
    expect(same.body.id).toBe(idOf(first))
    expect(sessionCookie(same)).toBeUndefined()

    clock.advance(2 * 60_000)
    const renewed = await request(app).get('/read').set('Cookie', cookie0)
    expect(renewed.body.id).not.toBe(idOf(first))
    const cookie1 = cookiePair(sessionCookie(renewed))
    clock.advance(9 * 60_000)
    expect((await request(app).get('/read').set('Cookie', cookie1)).body.id).toBe(renewed.body.id)
    expect(renewed.body.cart).toEqual(['tea'])
  })

  it('two processes due at once agree on one new id', async () => {
    const store = new MemoryStore()
    const a = shop(store, { every: '1m' })
    const b = shop(store, { every: '1m' })
    const first = await request(a.app).post('/add/tea')
    const cookie = cookiePair(sessionCookie(first))
    clock.advance(2 * 60_000)
    const inA = a.held('a', 'milk', cookie)
    const inB = b.held('b', 'jam', cookie)
    await Promise.all([inA.loaded, inB.loaded])
    inA.release()
    inB.release()
    const [resA, resB] = await Promise.all([inA.done, inB.done])
    expect(idOf(resA)).toBe(idOf(resB))
    expect(idOf(resA)).not.toBe(idOf(first))
    const read = await request(a.app)
      .get('/read')
      .set('Cookie', cookiePair(sessionCookie(resA)))
    expect([...read.body.cart].sort()).toEqual(['jam', 'milk', 'tea'])
    expect(await store.count()).toBe(1)
  })
})

describe('renew: { afterRequests }', () => {
  it('renews on the Nth request with one id, then counts again under the new id', async () => {
    const store = new MemoryStore()
    const { app } = shop(store, { afterRequests: 3 })
    const first = await request(app).post('/add/tea') // creates: not counted
    const cookie0 = cookiePair(sessionCookie(first))
    const ids: string[] = []
    let cookie = cookie0
    for (let i = 0; i < 6; i++) {
      const res = await request(app).get('/read').set('Cookie', cookie)
      ids.push(res.body.id as string)
      const sent = sessionCookie(res)
      if (sent) cookie = cookiePair(sent)
      expect(res.body.cart).toEqual(['tea'])
    }
    const [id0] = [idOf(first)]
    expect(ids.slice(0, 2)).toEqual([id0, id0])
    expect(ids[2]).not.toBe(id0)
    expect(ids.slice(3, 5)).toEqual([ids[2], ids[2]])
    expect(ids[5]).not.toBe(ids[2])
    expect(await store.count()).toBe(1)
  })
})

describe('renew: setup', () => {
  const store = () => new MemoryStore()
  it.each([
    [{}, /renew needs every .* or afterRequests/],
    [{ every: '15 minutes' }, /renew\.every must be .* got "15 minutes"/],
    [{ every: -5 }, /renew\.every must be a positive number of ms/],
    [{ afterRequests: 0 }, /renew\.afterRequests must be a positive integer, got 0/],
    [{ afterRequests: 2.5 }, /renew\.afterRequests must be a positive integer/],
    [{ every: '1h', grace: 'soon' }, /renew\.grace must be .* got "soon"/],
    [{ every: '1h', graceMs: 10 }, /graceMs/],
    ['15m', /renew must be an object/],
  ])('rejects renew: %j', (renew, message) => {
    expect(() =>
      session(store(), { secret: SECRET, renew: renew as SessionOptions['renew'] }),
    ).toThrow(message)
  })

  it('refuses a store that cannot renew, saying what to do instead', () => {
    const legacy = adaptLegacyStore({
      get: (_id: string, cb: (err: null, s: null) => void) => cb(null, null),
      set: (_id: string, _s: unknown, cb: (err?: null) => void) => cb(null),
      destroy: (_id: string, cb: (err?: null) => void) => cb(null),
    })
    expect(() => session(legacy, { secret: SECRET, renew: { every: '15m' } })).toThrow(
      /renew needs a store that can renew ids .*regenerate\(\{ keepData: true \}\)/,
    )
    expect(() => session(legacy, { secret: SECRET })).not.toThrow()
  })
})
