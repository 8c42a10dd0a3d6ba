/**
 * Hostile cookies get a fresh session, never an error; ids a client chooses are never adopted.
 */
import express from 'express'
import request from 'supertest'
import session, { MemoryStore } from '../entries/index'
import { signSessionId } from '../lib/cookie'
import { cookiePair, sessionCookie } from './support/http'
import { storedId } from './support/at-rest'

const SECRET = 'security-test-secret'
type Data = Record<string, unknown>

function app(store = new MemoryStore()) {
  const server = express()
  server.use(session(store, { secret: SECRET }))
  server.post('/set', (req, res) => {
    ;(req.session as unknown as Data).mine = true
    res.json({ id: req.session.id })
  })
  server.get('/read', (req, res) => res.json({ id: req.session.id, data: { ...req.session } }))
  return { server, store }
}

describe('hostile cookies', () => {
  let server: express.Express
  let victim: { id: string; cookie: string }

  beforeAll(async () => {
    ;({ server } = app())
    const res = await request(server).post('/set')
    victim = { id: res.body.id, cookie: cookiePair(sessionCookie(res)) }
  })

  const valueOf = (cookie: string) => decodeURIComponent(cookie.split('=').slice(1).join('='))

  it.each<[string, () => string]>([
    // Change the id's first character to one it is not, so the value always differs.
    [
      'tampered id',
      () =>
        `connect.sid=${encodeURIComponent(valueOf(victim.cookie).replace(/^s:(.)/, (_m, c) => `s:${c === '0' ? '1' : '0'}`))}`,
    ],
    [
      'tampered mac',
      () =>
        `connect.sid=${encodeURIComponent(valueOf(victim.cookie).replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')))}`,
    ],
    ['trailing garbage', () => `${victim.cookie}garbage`],
    ['unsigned id', () => `connect.sid=${victim.id}`],
    ['unsigned with s: prefix', () => `connect.sid=s%3A${victim.id}`],
    [
      'signed with another secret',
      () => `connect.sid=${encodeURIComponent(signSessionId(victim.id, 'guessed'))}`,
    ],
    ['garbage', () => 'connect.sid=%%%;;==\\x"\'<>'],
    ['8 KB', () => `connect.sid=${'A'.repeat(8192)}`],
    [
      '8 KB of many cookies',
      () => Array.from({ length: 400 }, (_, i) => `c${i}=${'x'.repeat(16)}`).join('; '),
    ],
    ['empty', () => 'connect.sid='],
  ])("%s: a fresh session, never the victim's, never a 500", async (_label, cookie) => {
    const res = await request(server).get('/read').set('Cookie', cookie())
    expect(res.status).toBe(200)
    expect(res.body.data).toEqual({})
    expect(res.body.id).not.toBe(victim.id)
  })

  it('duplicated cookies: a forged one first does not hide the genuine one after it', async () => {
    const forged = `connect.sid=${encodeURIComponent(signSessionId(victim.id, 'guessed'))}`
    const res = await request(server)
      .get('/read')
      .set('Cookie', `${forged}; other=1; ${victim.cookie}`)
    expect(res.body).toEqual({ id: victim.id, data: { mine: true } })
  })

  it('duplicated cookies: two genuine ones resolve to the first', async () => {
    const other = await request(server).post('/set')
    const res = await request(server)
      .get('/read')
      .set('Cookie', `${cookiePair(sessionCookie(other))}; ${victim.cookie}`)
    expect(res.body.id).toBe(other.body.id)
  })
})

describe('session fixation', () => {
  it('never adopts a validly signed id the store does not know; the new session gets its own id', async () => {
    const { server } = app()
    const planted = `connect.sid=${encodeURIComponent(signSessionId('attacker-chosen-id-0000000000', SECRET))}`
    const res = await request(server).post('/set').set('Cookie', planted)
    expect(res.body.id).not.toBe('attacker-chosen-id-0000000000')
  })

  it('after regenerate, the pre-login id is dead', async () => {
    const { server, store } = app()
    server.post('/login', async (req, res) => {
      await req.session.regenerate({ keepData: true })
      res.json({ id: req.session.id })
    })
    const before = await request(server).post('/set')
    const login = await request(server)
      .post('/login')
      .set('Cookie', cookiePair(sessionCookie(before)))
    expect(await store.load(storedId(before.body.id, SECRET))).toBeNull()
    const reuse = await request(server)
      .get('/read')
      .set('Cookie', cookiePair(sessionCookie(before)))
    expect(reuse.body.id).not.toBe(before.body.id)
    expect(reuse.body.id).not.toBe(login.body.id)
    expect(reuse.body.data).toEqual({})
  })

  it('never lets stored data reach a prototype', async () => {
    const store = new MemoryStore()
    const { server } = app(store)
    const created = await request(server).post('/set')
    const record = (await store.load(storedId(created.body.id, SECRET)))!
    await store.save(storedId(created.body.id, SECRET), {
      set: JSON.parse('{"__proto__":"{\\"isAdmin\\":true}"}'),
      unset: [],
      cookie: {},
      createdAt: record.createdAt,
      expiresAt: record.expiresAt,
      idleTimeout: record.idleTimeout,
      userId: null,
      expectedVersion: record.version,
    })
    server.get('/admin', (req, res) =>
      res.json({ isAdmin: (req.session as unknown as Data).isAdmin ?? false }),
    )
    const res = await request(server)
      .get('/admin')
      .set('Cookie', cookiePair(sessionCookie(created)))
    expect(res.body).toEqual({ isAdmin: false })
  })
})
