/**
 * Encryption at rest (`encrypt: { keys }`) on every concord store, real: values are stored as
 * AES-256-GCM ciphertext bound to their session and key name; a changed or moved value fails
 * with a StoreError naming the session by its keyed hash, and no other session is touched;
 * keys rotate, and a save rewrites every value still under an older key.
 */
import { randomBytes } from 'node:crypto'
import express from 'express'
import request from 'supertest'
import session, {
  keyTtl,
  MemoryStore,
  sessionInfo,
  type SessionOptions,
  type Store,
} from '../entries/index'
import { isUserIndex } from '../lib/store'
import { AtRestStores, type InspectedStore } from './support/at-rest-stores'
import { useFakeDate } from './support/clock'
import { cookiePair, sessionCookie } from './support/http'

const SECRET = 'encryption-test-secret'
const HOUR = 3_600_000
const K1 = randomBytes(32)
const K2 = randomBytes(32)
/** A value that must never be found in clear in the store. */
const SECRET_ITEM = 'passport-4711'

type Data = { cart?: string[]; note?: string }
const data = (req: express.Request) => req.session as unknown as Data

function shop(store: Store, options: SessionOptions = {}) {
  const app = express()
  app.use(session(store, { secret: SECRET, cookie: { maxAge: HOUR }, ...options }))
  app.post('/add/:item', (req, res) => {
    data(req).cart = [...(data(req).cart ?? []), req.params.item as string]
    res.json({ id: req.session.id, storedId: sessionInfo(req.session).storedId })
  })
  app.post('/note/:text', (req, res) => {
    data(req).note = req.params.text as string
    res.json({ id: req.session.id })
  })
  app.post('/login/:user', (req, res) => {
    req.session.setUser(req.params.user as string)
    keyTtl(req.session).set('otp', '123456', '5m')
    res.json({ id: req.session.id, storedId: sessionInfo(req.session).storedId })
  })
  app.get('/read', (req, res) =>
    res.json({
      id: req.session.id,
      cart: data(req).cart ?? null,
      note: data(req).note ?? null,
      otp: (req.session as unknown as { otp?: string }).otp ?? null,
    }),
  )
  app.use(
    (
      err: Error & { status?: number; code?: string },
      _req: express.Request,
      res: express.Response,
      _next: express.NextFunction,
    ) => {
      res.status(err.status ?? 500).json({ name: err.name, code: err.code, message: err.message })
    },
  )
  return app
}

/** A session with a cart and a note; its ids and cookie. */
async function started(app: express.Express) {
  const res = await request(app).post(`/add/${SECRET_ITEM}`).expect(200)
  const cookie = cookiePair(sessionCookie(res))
  await request(app).post('/note/hello').set('Cookie', cookie).expect(200)
  const { id, storedId } = res.body as { id: string; storedId: string }
  return { id, storedId, cookie }
}

/** The name of the key a stored value was encrypted with (the envelope's second field). */
function keyIdOf(text: string | undefined): string {
  const match = /^"cs1\.([A-Za-z0-9_-]{8})\./.exec(text ?? '')
  if (!match) throw new Error(`not an encrypted value: ${text}`)
  return match[1]!
}

const stores = new AtRestStores()
afterAll(() => stores.close())

describe.each(stores.kinds.map((kind) => [kind.name, kind] as const))('%s', (_name, kind) => {
  let inspected: InspectedStore
  beforeEach(async () => {
    inspected = await kind.make()
  })

  it('stores each value encrypted, and reads it back', async () => {
    const { store, dump, getValue } = inspected
    const app = shop(store, { encrypt: { keys: [K1] } })
    const { id, storedId, cookie } = await started(app)
    const read = await request(app).get('/read').set('Cookie', cookie).expect(200)
    expect(read.body).toMatchObject({ id, cart: [SECRET_ITEM], note: 'hello' })
    expect(await getValue(storedId, 'cart')).toMatch(/^"cs1\./)
    const text = await dump()
    if (text !== undefined) {
      expect(text).not.toContain(SECRET_ITEM)
      expect(text).not.toContain('hello')
      expect(text).not.toContain(id)
    }
  })

  it('fails a changed value with a StoreError naming the session by its keyed hash; other sessions go on', async () => {
    const { store, getValue, setValue } = inspected
    const app = shop(store, { encrypt: { keys: [K1] } })
    const victim = await started(app)
    const other = await started(app)
    const stored = (await getValue(victim.storedId, 'cart'))!
    // One character of the ciphertext changed (still base64url, still the envelope's shape).
    const at = stored.lastIndexOf('.') - 3
    const flipped = stored.slice(0, at) + (stored[at] === 'A' ? 'B' : 'A') + stored.slice(at + 1)
    await setValue(victim.storedId, 'cart', flipped)

    const res = await request(app).get('/read').set('Cookie', victim.cookie).expect(503)
    expect(res.body).toMatchObject({ name: 'StoreError', code: 'EDECRYPT' })
    expect(res.body.message).toContain(`session ${victim.storedId}`)
    expect(res.body.message).toContain('"cart"')
    expect(res.body.message).not.toContain(victim.id)
    const fine = await request(app).get('/read').set('Cookie', other.cookie).expect(200)
    expect(fine.body).toMatchObject({ id: other.id, cart: [SECRET_ITEM], note: 'hello' })
    // The failed request wrote nothing: the tampered value is as it was left.
    expect(await getValue(victim.storedId, 'cart')).toBe(flipped)
  })

  it('fails a value copied from another session, or from another key of the same session', async () => {
    const { store, getValue, setValue } = inspected
    const app = shop(store, { encrypt: { keys: [K1] } })
    const a = await started(app)
    const b = await started(app)
    await setValue(a.storedId, 'cart', (await getValue(b.storedId, 'cart'))!)
    const swapped = await request(app).get('/read').set('Cookie', a.cookie).expect(503)
    expect(swapped.body.message).toMatch(/cannot be decrypted: it fails authentication/)

    await setValue(b.storedId, 'note', (await getValue(b.storedId, 'cart'))!)
    const moved = await request(app).get('/read').set('Cookie', b.cookie).expect(503)
    expect(moved.body.message).toContain('"note"')
  })

  it('rotates keys: reads with an older key, and a save of one changed key rewrites every value', async () => {
    const { store, getValue } = inspected
    const { storedId, cookie } = await started(shop(store, { encrypt: { keys: [K1] } }))
    const oldKeyId = keyIdOf(await getValue(storedId, 'cart'))
    expect(keyIdOf(await getValue(storedId, 'note'))).toBe(oldKeyId)

    const rotated = shop(store, { encrypt: { keys: [K2, K1] } })
    const read = await request(rotated).get('/read').set('Cookie', cookie).expect(200)
    expect(read.body).toMatchObject({ cart: [SECRET_ITEM], note: 'hello' })
    expect(keyIdOf(await getValue(storedId, 'cart'))).toBe(oldKeyId) // a read writes nothing

    await request(rotated).post('/note/again').set('Cookie', cookie).expect(200) // note only
    const newKeyId = keyIdOf(await getValue(storedId, 'note'))
    expect(newKeyId).not.toBe(oldKeyId)
    expect(keyIdOf(await getValue(storedId, 'cart'))).toBe(newKeyId)

    // The old key can go now.
    const newOnly = shop(store, { encrypt: { keys: [K2] } })
    const after = await request(newOnly).get('/read').set('Cookie', cookie).expect(200)
    expect(after.body).toMatchObject({ cart: [SECRET_ITEM], note: 'again' })
    // And without the key a value was written with, the session fails clearly.
    const oldOnly = shop(store, { encrypt: { keys: [K1] } })
    const fail = await request(oldOnly).get('/read').set('Cookie', cookie).expect(503)
    expect(fail.body.message).toMatch(/encrypted with a key that is not in encrypt\.keys/)
  })

  it('reads values stored before encryption was on, and encrypts them all on the next save', async () => {
    const { store, getValue } = inspected
    const { storedId, cookie } = await started(shop(store))
    expect(await getValue(storedId, 'cart')).toBe(JSON.stringify([SECRET_ITEM]))
    const encrypted = shop(store, { encrypt: { keys: [K1] } })
    await request(encrypted).post('/note/later').set('Cookie', cookie).expect(200)
    expect(await getValue(storedId, 'cart')).toMatch(/^"cs1\./)
    expect(await getValue(storedId, 'note')).toMatch(/^"cs1\./)
    const read = await request(encrypted).get('/read').set('Cookie', cookie).expect(200)
    expect(read.body).toMatchObject({ cart: [SECRET_ITEM], note: 'later' })
  })

  it('keeps the user index and moves a raw-id session with its values encrypted anew', async () => {
    const { store, getValue } = inspected
    const before = await started(shop(store, { hashIds: false, encrypt: { keys: [K1] } }))
    const app = shop(store, { encrypt: { keys: [K1] } })
    const read = await request(app).get('/read').set('Cookie', before.cookie).expect(200)
    expect(read.body).toMatchObject({ id: before.id, cart: [SECRET_ITEM], note: 'hello' })
    const login = await request(app).post('/login/ada').set('Cookie', before.cookie).expect(200)
    const { storedId } = login.body as { storedId: string }
    expect(await store.load(before.id)).toBeNull()
    expect(await getValue(storedId, 'cart')).toMatch(/^"cs1\./)
    if (isUserIndex(store)) expect(await store.listByUser('ada')).toEqual([storedId])
  })
})

describe('encryption with a key lifetime', () => {
  const clock = useFakeDate()

  it('a key with a lifetime of its own is encrypted, and gone once the lifetime ends', async () => {
    const store = new MemoryStore()
    const app = shop(store, { encrypt: { keys: [K1] } })
    const { cookie } = await started(app)
    await request(app).post('/login/ada').set('Cookie', cookie).expect(200)
    const [storedId] = await store.listByUser('ada')
    const record = (await store.load(storedId!))!
    expect(record.data.otp).toMatch(/^"cs1\./)
    expect(record.keyExpires?.otp).toBeGreaterThan(Date.now())
    expect((await request(app).get('/read').set('Cookie', cookie)).body.otp).toBe('123456')
    clock.advance(5 * 60_000 + 1)
    const later = await request(app).get('/read').set('Cookie', cookie).expect(200)
    expect(later.body).toMatchObject({ otp: null, cart: [SECRET_ITEM] })
  })
})

describe('the encrypt option', () => {
  const store = new MemoryStore()
  const HOW = /crypto\.randomBytes\(32\)\.toString\('base64'\)/
  it.each([
    ['no keys', {}, /encrypt needs a non-empty keys array/],
    ['an empty keys array', { keys: [] }, /encrypt needs a non-empty keys array/],
    [
      'a 16-byte key',
      { keys: [randomBytes(16)] },
      /encrypt\.keys\[0\] is not a 32-byte key \(got 16 bytes\)/,
    ],
    [
      'a passphrase',
      { keys: ['correct horse battery staple'] },
      /encrypt\.keys\[0\] is not a 32-byte key \(got a string of 28 characters/,
    ],
    [
      'a bad older key',
      { keys: [K1, 42] },
      /encrypt\.keys\[1\] is not a 32-byte key \(got number\)/,
    ],
    ['an unknown option', { keys: [K1], algorithm: 'aes' }, /encrypt has unknown option algorithm/],
    ['not an object', 'secret', /encrypt needs a non-empty keys array/],
  ])('refuses %s at setup, saying what to pass', (_what, encrypt, message) => {
    expect(() => session(store, { secret: SECRET, encrypt: encrypt as never })).toThrow(message)
    expect(() => session(store, { secret: SECRET, encrypt: encrypt as never })).toThrow(HOW)
  })

  it('takes a key as a Buffer, 64 hex digits or base64', async () => {
    for (const key of [K1, K1.toString('hex'), K1.toString('base64'), K1.toString('base64url')]) {
      const app = shop(store, { encrypt: { keys: [key] } })
      const { cookie } = await started(app)
      const read = await request(shop(store, { encrypt: { keys: [K1] } }))
        .get('/read')
        .set('Cookie', cookie)
        .expect(200)
      expect(read.body.cart).toEqual([SECRET_ITEM])
    }
  })
})
