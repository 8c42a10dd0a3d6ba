/**
 * The bench's yardstick middleware (bench/limit.ts) is only a fair yardstick if it is correct:
 * it verifies signatures, never adopts an unknown id, and loses no concurrent update to
 * distinct keys.
 */
import express from 'express'
import request from 'supertest'
import { sign } from 'cookie-signature'
import { limitSession } from '../bench/limit'
import { cookiePair, sessionCookie } from './support/http'
import { Gate } from './support/stores'

const SECRET = 'limit-secret'

function app(held = new Map<string, Gate>()) {
  const a = express()
  a.use(limitSession({ secret: SECRET, maxAge: 60_000 }))
  a.post('/set/:key', async (req, res) => {
    await held.get(req.params.key!)?.pass()
    ;(req.session as unknown as Record<string, unknown>)[req.params.key!] = true
    res.json({ ok: true })
  })
  a.get('/', (req, res) => res.json({ ...(req.session as object) }))
  return a
}

const idOf = (setCookie: string) =>
  decodeURIComponent(cookiePair(setCookie).split('=')[1]!).slice(2).split('.')[0]

describe('the limit middleware', () => {
  it('issues a signed cookie express-session would accept, and reads the session back', async () => {
    const server = app()
    const created = await request(server).post('/set/a')
    const setCookie = sessionCookie(created)!
    expect(setCookie).toMatch(
      /^connect\.sid=s%3A[\w-]+\.[\w%]+; Max-Age=60; Path=\/; Expires=.+; HttpOnly; SameSite=Lax$/,
    )
    const id = idOf(setCookie)
    expect(decodeURIComponent(cookiePair(setCookie).split('=')[1]!)).toBe(`s:${sign(id!, SECRET)}`)
    expect((await request(server).get('/').set('Cookie', cookiePair(setCookie))).body).toEqual({
      a: true,
    })
  })

  it('rejects a tampered or foreign signature: the request gets a fresh, empty session', async () => {
    const server = app()
    const setCookie = sessionCookie(await request(server).post('/set/a'))!
    const id = idOf(setCookie)!
    for (const forged of [
      `s:${sign(id, 'other-secret')}`,
      `s:${id}.AAAA`,
      `s:${sign(id, SECRET)}x`,
      id,
    ]) {
      const res = await request(server)
        .get('/')
        .set('Cookie', `connect.sid=${encodeURIComponent(forged)}`)
      expect(res.body).toEqual({})
    }
  })

  it('gives an unknown id a fresh one instead of adopting it', async () => {
    const server = app()
    const unknown = '11111111-2222-4333-8444-555555555555'
    const res = await request(server)
      .post('/set/a')
      .set('Cookie', `connect.sid=${encodeURIComponent(`s:${sign(unknown, SECRET)}`)}`)
    const id = idOf(sessionCookie(res)!)
    expect(id).not.toBe(unknown)
    expect(id).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('loses no update when concurrent requests change distinct keys', async () => {
    const held = new Map<string, Gate>()
    const server = app(held)
    const cookie = cookiePair(sessionCookie(await request(server).post('/set/seed'))!)
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`)
    const gates = keys.map((key) => {
      const gate = new Gate()
      held.set(key, gate)
      return gate
    })
    const replies = keys.map((key) =>
      request(server)
        .post(`/set/${key}`)
        .set('Cookie', cookie)
        .then((r) => r),
    )
    await Promise.all(gates.map((gate) => gate.arrived(1))) // every request loaded the same version
    for (const gate of gates) gate.open()
    expect((await Promise.all(replies)).map((r) => r.status)).toEqual(keys.map(() => 200))
    const data = (await request(server).get('/').set('Cookie', cookie)).body
    expect(Object.keys(data).sort()).toEqual(['seed', ...keys].sort())
  })
})
