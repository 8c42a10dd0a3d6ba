/**
 * Ids hashed at rest, on every concord store (memory, layered, Redis, file, PostgreSQL), real:
 * the store keys each session by the keyed hash of its id, so what it holds cannot be replayed
 * as a cookie; sessions stored under their raw id (from before) still load and move under the
 * hash; "sign out that device" works on the stored ids `listByUser` returns.
 */
import { randomBytes } from 'node:crypto'
import express from 'express'
import request from 'supertest'
import session, {
  hashSessionId,
  sessionInfo,
  type SessionEvent,
  type SessionOptions,
  type Store,
} from '../entries/index'
import dropIn from '../entries/express-session'
import { MOVED_KEY } from '../lib/at-rest'
import { isUserIndex, type LoadOptions, type SessionChange } from '../lib/store'
import { MemoryStore } from '../stores/memory/store'
import { Gate } from './support/stores'
import { useFakeDate } from './support/clock'
import { FileStore } from '../stores/file/store'
import { storedId } from './support/at-rest'
import { AtRestStores } from './support/at-rest-stores'
import { cookiePair, sessionCookie } from './support/http'

// express-session ships no types of its own; it is used as plain JS here.
const expressSession = require('express-session') as {
  MemoryStore: new () => { sessions: Record<string, string> }
}

const SECRET = 'at-rest-test-secret'
const HOUR = 3_600_000

type Data = { cart?: string[]; device?: string }
const data = (req: express.Request) => req.session as unknown as Data

function shop(store: Store, options: SessionOptions = {}) {
  const app = express()
  app.use(session(store, { secret: SECRET, cookie: { maxAge: HOUR }, ...options }))
  app.post('/add/:item', (req, res) => {
    data(req).cart = [...(data(req).cart ?? []), req.params.item as string]
    res.json({ id: req.session.id })
  })
  app.get('/cart', (req, res) =>
    res.json({
      id: req.session.id,
      storedId: sessionInfo(req.session).storedId,
      cart: data(req).cart ?? [],
    }),
  )
  app.post('/login/:user', async (req, res) => {
    await req.session.regenerate({ keepData: true })
    req.session.setUser(req.params.user as string)
    data(req).device = req.get('x-device') ?? 'unknown'
    res.json({ id: req.session.id, storedId: sessionInfo(req.session).storedId })
  })
  // A "your devices" page: stored ids, this device marked by its own stored id.
  app.get('/devices/:user', async (req, res) => {
    if (!isUserIndex(store)) throw new Error('no user index')
    const mine = sessionInfo(req.session).storedId
    const ids = await store.listByUser(req.params.user as string)
    res.json(ids.map((id) => ({ id, current: id === mine })))
  })
  app.post('/devices/:user/:storedId/sign-out', async (req, res) => {
    if (!isUserIndex(store)) throw new Error('no user index')
    const ids = await store.listByUser(req.params.user as string)
    if (!ids.includes(req.params.storedId as string)) return res.status(404).end()
    await store.destroy(req.params.storedId as string)
    res.json({ ok: true })
  })
  return app
}

const stores = new AtRestStores()
afterAll(() => stores.close())

describe.each(stores.kinds.map((kind) => [kind.name, kind] as const))('%s', (_name, kind) => {
  it('keys sessions and the user index by the keyed hash: the raw id is nowhere in the store', async () => {
    const { store, dump } = await kind.make()
    const events: SessionEvent[] = []
    const app = shop(store, { onEvent: (event) => void events.push(event) })
    const first = await request(app).post('/add/tea').expect(200)
    const login = await request(app)
      .post('/login/ada')
      .set('Cookie', cookiePair(sessionCookie(first)))
      .expect(200)
    const cookie = cookiePair(sessionCookie(login))
    await request(app).post('/add/jam').set('Cookie', cookie).expect(200)
    const { id, storedId: stored } = login.body as { id: string; storedId: string }

    expect(stored).toBe(storedId(id, SECRET))
    expect(stored).not.toBe(id)
    expect(await store.load(id)).toBeNull()
    expect((await store.load(stored))?.data).toMatchObject({ cart: '["tea","jam"]' })
    if (isUserIndex(store)) expect(await store.listByUser('ada')).toEqual([stored])
    const text = await dump()
    if (text !== undefined) {
      expect(text).toContain(stored)
      expect(text).not.toContain(id)
      expect(text).not.toContain((first.body as { id: string }).id)
    }
    // Events show the same keyed hash the store keys the session by.
    expect(events.find((e) => e.type === 'regenerated')).toMatchObject({ sessionId: stored })
    const cart = await request(app).get('/cart').set('Cookie', cookie).expect(200)
    expect(cart.body).toEqual({ id, storedId: stored, cart: ['tea', 'jam'] })
  })

  it('with hashIds: false keeps the raw id as the key (the dump check sees it)', async () => {
    const { store, dump } = await kind.make()
    const app = shop(store, { hashIds: false })
    const res = await request(app).post('/add/tea').expect(200)
    const { id } = res.body as { id: string }
    expect((await store.load(id))?.data).toEqual({ cart: '["tea"]' })
    const text = await dump()
    if (text !== undefined) expect(text).toContain(id)
  })

  it('loads a session stored under its raw id, moves it under the hash, and keeps its cookie', async () => {
    const { store, dump } = await kind.make()
    // Written by the app before hashing was on.
    const before = shop(store, { hashIds: false })
    const first = await request(before).post('/add/tea').expect(200)
    const { id } = first.body as { id: string }
    const cookie = cookiePair(sessionCookie(first))
    expect(await store.load(id)).not.toBeNull()

    const after = shop(store)
    const read = await request(after).get('/cart').set('Cookie', cookie).expect(200)
    expect(read.body).toEqual({ id, storedId: storedId(id, SECRET), cart: ['tea'] })
    expect(sessionCookie(read)).toBeUndefined() // same session, same cookie
    expect(await store.load(id)).toBeNull()
    expect((await store.load(storedId(id, SECRET)))?.data).toEqual({ cart: '["tea"]' })
    const text = await dump()
    if (text !== undefined) expect(text).not.toContain(id)

    await request(after).post('/add/jam').set('Cookie', cookie).expect(200)
    const again = await request(after).get('/cart').set('Cookie', cookie).expect(200)
    expect(again.body.cart).toEqual(['tea', 'jam'])
  })

  it('moves a raw-id session once when 20 requests load it at the same time: no update lost', async () => {
    const { store } = await kind.make()
    const first = await request(shop(store, { hashIds: false }))
      .post('/add/tea')
      .expect(200)
    const { id } = first.body as { id: string }
    const cookie = cookiePair(sessionCookie(first))
    const after = shop(store)
    const items = Array.from({ length: 20 }, (_, i) => `item-${i}`)
    const statuses = await Promise.all(
      items.map(
        async (item) => (await request(after).post(`/add/${item}`).set('Cookie', cookie)).status,
      ),
    )
    expect(statuses.filter((s) => s !== 200)).toEqual([])
    const read = await request(after).get('/cart').set('Cookie', cookie).expect(200)
    expect(read.body.id).toBe(id)
    expect([...read.body.cart].sort()).toEqual(['tea', ...items].sort())
    expect(await store.load(id)).toBeNull()
  })

  it('after a secret rotation, finds a session under the old secret’s hash and moves it', async () => {
    const { store } = await kind.make()
    const first = await request(shop(store, { secret: 'old-secret' })).post('/add/tea')
    const { id } = first.body as { id: string }
    const rotated = shop(store, { secret: ['new-secret', 'old-secret'] })
    const read = await request(rotated)
      .get('/cart')
      .set('Cookie', cookiePair(sessionCookie(first)))
      .expect(200)
    expect(read.body).toMatchObject({ id, cart: ['tea'] })
    expect(await store.load(storedId(id, 'old-secret'))).toBeNull()
    expect((await store.load(storedId(id, 'new-secret')))?.data).toEqual({ cart: '["tea"]' })
  })

  it('signs out one device by the stored id listByUser returns', async () => {
    const { store } = await kind.make()
    const app = shop(store)
    const login = async (device: string) => {
      const res = await request(app).post('/login/grace').set('x-device', device).expect(200)
      return {
        ...(res.body as { id: string; storedId: string }),
        cookie: cookiePair(sessionCookie(res)),
      }
    }
    const laptop = await login('laptop')
    const phone = await login('phone')
    const devices = await request(app).get('/devices/grace').set('Cookie', laptop.cookie)
    expect([...devices.body].sort((a, b) => a.id.localeCompare(b.id))).toEqual(
      [
        { id: laptop.storedId, current: true },
        { id: phone.storedId, current: false },
      ].sort((a, b) => a.id.localeCompare(b.id)),
    )
    // A raw id is not a stored id: signing out by it finds nothing.
    await request(app)
      .post(`/devices/grace/${phone.id}/sign-out`)
      .set('Cookie', laptop.cookie)
      .expect(404)
    await request(app)
      .post(`/devices/grace/${phone.storedId}/sign-out`)
      .set('Cookie', laptop.cookie)
      .expect(200)
    const onPhone = await request(app).get('/cart').set('Cookie', phone.cookie).expect(200)
    expect(onPhone.body.id).not.toBe(phone.id) // a fresh session: the phone is signed out
    const onLaptop = await request(app).get('/cart').set('Cookie', laptop.cookie).expect(200)
    expect(onLaptop.body.id).toBe(laptop.id)
    if (isUserIndex(store)) expect(await store.listByUser('grace')).toEqual([laptop.storedId])
  })

  it('destroy removes a session stored under its raw id too, so nothing brings it back', async () => {
    const { store } = await kind.make()
    const first = await request(shop(store, { hashIds: false }))
      .post('/add/tea')
      .expect(200)
    const { id } = first.body as { id: string }
    const app = express()
    app.use(session(store, { secret: SECRET }))
    app.post('/logout', async (req, res) => {
      await req.session.destroy()
      res.end()
    })
    const cookie = cookiePair(sessionCookie(first))
    await request(app).post('/logout').set('Cookie', cookie).expect(200)
    expect(await store.load(id)).toBeNull()
    expect(await store.load(storedId(id, SECRET))).toBeNull()
    const read = await request(shop(store)).get('/cart').set('Cookie', cookie).expect(200)
    expect(read.body.cart).toEqual([])
  })
})

describe('the express-session drop-in over a concord store', () => {
  it('moves sessions it stored under raw ids before, and can encrypt', async () => {
    const { store, dump, getValue } = await stores.redis()
    const routes = (app: express.Express) => {
      app.post('/add/:item', (req, res) => {
        const s = req.session as unknown as Data
        s.cart = [...(s.cart ?? []), req.params.item as string]
        res.json({ id: req.session.id, storedId: sessionInfo(req.session).storedId })
      })
      return app
    }
    const old = express()
    old.use(dropIn({ secret: SECRET, store, hashIds: false, resave: false }))
    const first = await request(routes(old)).post('/add/tea').expect(200)
    const { id } = first.body as { id: string }
    expect(await dump()).toContain(id)

    const now = express()
    now.use(dropIn({ secret: SECRET, store, resave: false, encrypt: { keys: [randomBytes(32)] } }))
    const next = await request(routes(now))
      .post('/add/jam')
      .set('Cookie', cookiePair(sessionCookie(first)))
      .expect(200)
    expect(next.body).toEqual({ id, storedId: storedId(id, SECRET) })
    const text = (await dump())!
    expect(text).not.toContain(id)
    expect(text).not.toContain('jam')
    expect(await getValue(storedId(id, SECRET), 'cart')).toMatch(/^"cs1\./)
  })
})

describe('what is not hashed by default', () => {
  it("leaves the drop-in over express-session's own store keyed by raw ids", async () => {
    const legacy = new expressSession.MemoryStore()
    const app = express()
    app.use(
      dropIn({ secret: SECRET, store: legacy as never, resave: false, saveUninitialized: false }),
    )
    app.post('/add', (req, res) => {
      ;(req.session as unknown as Data).cart = ['tea']
      res.json({ id: req.sessionID })
    })
    const res = await request(app).post('/add').expect(200)
    expect(Object.keys(legacy.sessions)).toEqual([(res.body as { id: string }).id])
  })

  it("hashes ids for the drop-in over express-session's store with hashIds: true", async () => {
    const legacy = new expressSession.MemoryStore()
    const app = express()
    app.use(dropIn({ secret: SECRET, store: legacy as never, hashIds: true }))
    app.post('/add', (req, res) => {
      ;(req.session as unknown as Data).cart = ['tea']
      res.json({ id: req.sessionID })
    })
    const res = await request(app).post('/add').expect(200)
    expect(Object.keys(legacy.sessions)).toEqual([
      storedId((res.body as { id: string }).id, SECRET),
    ])
  })

  it('an explicit idHashKey keys the store hash, events and sessionInfo alike', async () => {
    const { store } = await stores.kinds[0]!.make()
    const events: SessionEvent[] = []
    const app = shop(store, { idHashKey: 'my-key', onEvent: (e) => void events.push(e) })
    const res = await request(app).post('/add/tea').expect(200)
    const { id } = res.body as { id: string }
    expect(await store.load(hashSessionId(id, 'my-key'))).not.toBeNull()
    expect(events[0]).toMatchObject({ type: 'created', sessionId: hashSessionId(id, 'my-key') })
  })

  it('rejects a hashIds that is not a boolean', async () => {
    const { store } = await stores.kinds[0]!.make()
    expect(() => session(store, { secret: SECRET, hashIds: 'yes' as never })).toThrow(
      /hashIds must be true or false, got "yes"/,
    )
  })
})

/** A MemoryStore whose creates wait at a gate while `held` is set. */
class HeldCreates implements Store {
  readonly inner = new MemoryStore()
  held: Gate | undefined
  load(id: string, options?: LoadOptions) {
    return this.inner.load(id, options)
  }
  async save(id: string, change: SessionChange) {
    if (change.expectedVersion === null) await this.held?.pass()
    return this.inner.save(id, change)
  }
  touch(id: string, expiresAt: number) {
    return this.inner.touch(id, expiresAt)
  }
  destroy(id: string) {
    return this.inner.destroy(id)
  }
}

describe('moving a session stored under its raw id', () => {
  it('a destroy of the raw id while the move runs leaves the session destroyed', async () => {
    const store = new HeldCreates()
    const first = await request(shop(store, { hashIds: false }))
      .post('/add/tea')
      .expect(200)
    const { id } = first.body as { id: string }
    const gate = (store.held = new Gate())
    const reading = request(shop(store))
      .get('/cart')
      .set('Cookie', cookiePair(sessionCookie(first)))
      .then((res) => res)
    await gate.arrived(1) // marked at its raw id; its copy under the hash not yet made
    await store.inner.destroy(id) // the old app signs the user out meanwhile
    gate.open()
    const res = await reading
    expect(res.status).toBe(200)
    expect(res.body.id).not.toBe(id) // a fresh session, not the destroyed one
    expect(res.body.cart).toEqual([])
    expect(await store.inner.load(id)).toBeNull()
    expect(await store.inner.load(storedId(id, SECRET))).toBeNull()
  })

  it('a move cut short after marking the old place is finished by the next load', async () => {
    const store = new MemoryStore()
    const first = await request(shop(store, { hashIds: false }))
      .post('/add/tea')
      .expect(200)
    const { id } = first.body as { id: string }
    const record = (await store.load(id))!
    // As a process that died between marking and copying would leave it.
    await store.save(id, {
      set: { [MOVED_KEY]: JSON.stringify(storedId(id, SECRET)) },
      unset: [],
      cookie: record.cookie,
      createdAt: record.createdAt,
      expiresAt: record.expiresAt,
      idleTimeout: record.idleTimeout,
      userId: null,
      expectedVersion: record.version,
    })
    const read = await request(shop(store))
      .get('/cart')
      .set('Cookie', cookiePair(sessionCookie(first)))
      .expect(200)
    expect(read.body).toMatchObject({ id, cart: ['tea'] })
    expect(await store.load(id)).toBeNull()
    expect((await store.load(storedId(id, SECRET)))?.data).toEqual({ cart: '["tea"]' })
  })

  it('a save the old app makes to the raw id after the mark conflicts instead of being lost', async () => {
    const store = new HeldCreates()
    const first = await request(shop(store, { hashIds: false }))
      .post('/add/tea')
      .expect(200)
    const { id } = first.body as { id: string }
    const loaded = (await store.inner.load(id))!
    const gate = (store.held = new Gate())
    const reading = request(shop(store))
      .get('/cart')
      .set('Cookie', cookiePair(sessionCookie(first)))
      .then((res) => res)
    await gate.arrived(1)
    // The old app saves what it loaded before the mark: the version check refuses it.
    const late = await store.inner.save(id, {
      set: { cart: '["tea","lost?"]' },
      unset: [],
      cookie: loaded.cookie,
      createdAt: loaded.createdAt,
      expiresAt: loaded.expiresAt,
      idleTimeout: loaded.idleTimeout,
      userId: null,
      expectedVersion: loaded.version,
    })
    expect(late).toMatchObject({ ok: false, reason: 'conflict' })
    gate.open()
    expect((await reading).body).toMatchObject({ id, cart: ['tea'] })
  })
})

describe('renewal across processes, with ids hashed at rest', () => {
  const clock = useFakeDate()

  it('a process that did not renew the id hands the browser the new one within the grace', async () => {
    const files = await stores.file()
    const { dir } = files
    // Two processes: two stores over one directory, each with its own middleware.
    const [a, b] = [new FileStore({ dir }), new FileStore({ dir })]
    const renew = { every: '1m', grace: '30s' }
    const appA = shop(a, { renew, rolling: true })
    const appB = shop(b, { renew, rolling: true })
    const first = await request(appA).post('/add/tea').expect(200)
    const { id } = first.body as { id: string }
    const oldCookie = cookiePair(sessionCookie(first))
    clock.advance(2 * 60_000)
    const renewed = await request(appA).get('/cart').set('Cookie', oldCookie).expect(200)
    const newId = (renewed.body as { id: string }).id
    expect(newId).not.toBe(id)
    // A request of the other process still carrying the old cookie, within the grace.
    const late = await request(appB).get('/cart').set('Cookie', oldCookie).expect(200)
    expect(late.body).toMatchObject({ id: newId, cart: ['tea'] })
    expect(cookiePair(sessionCookie(late))).toBe(cookiePair(sessionCookie(renewed)))
    // The note that carried the new id holds it encrypted: no id is in the files.
    const text = (await files.dump())!
    expect(text).not.toContain(newId)
    expect(text).not.toContain(id)
    await Promise.all([a.close(), b.close()])
  })

  it('follows the notes of several renewals in a row to the newest id', async () => {
    const files = await stores.file()
    const { dir } = files
    const [a, b] = [new FileStore({ dir }), new FileStore({ dir })]
    const renew = { afterRequests: 2, grace: '10m' }
    const appA = shop(a, { renew })
    const appB = shop(b, { renew })
    const first = await request(appA).post('/add/tea').expect(200)
    const oldCookie = cookiePair(sessionCookie(first))
    // Process A renews twelve times in a row, each time on the newest cookie it handed out.
    const ids = [(first.body as { id: string }).id]
    let cookie = oldCookie
    for (let i = 0; i < 100 && ids.length < 13; i++) {
      const res = await request(appA).get('/cart').set('Cookie', cookie).expect(200)
      const { id } = res.body as { id: string }
      if (id !== ids.at(-1)) {
        ids.push(id)
        cookie = cookiePair(sessionCookie(res))
      }
    }
    expect(new Set(ids).size).toBe(13)
    // Process B, with the first cookie, reaches the session and learns the newest id.
    const late = await request(appB).get('/cart').set('Cookie', oldCookie).expect(200)
    expect(late.body).toMatchObject({ id: ids[12], cart: ['tea'] })
    expect(cookiePair(sessionCookie(late))).toBe(cookie)
    await Promise.all([a.close(), b.close()])
  })
})
