/**
 * req.sessionStore under the drop-in, as @types/express-session users call it: the callback
 * API, createSession, generate; and cookie.signed.
 */
import express from 'express'
import request from 'supertest'
import session, { MemoryStore } from '../../entries/express-session.js'
import { cookieOf, sess as s } from './support/http.js'

const SECRET = 'request-store-secret'

function app(store = new MemoryStore()) {
  const a = express()
  a.use(session({ secret: SECRET, store, resave: false, saveUninitialized: false }))
  a.post('/', (req, res) => {
    s(req).views = 1
    s(req).theme = 'dark'
    res.send('ok')
  })
  a.get('/data', (req, res) => res.json({ ...req.session, cookie: undefined }))
  return a
}

describe('req.sessionStore under the drop-in', () => {
  it("answers express-session's get, set and destroy with callbacks, typed without casts", async () => {
    const a = app()
    a.get('/stored', (req, res, next) =>
      req.sessionStore.get(req.sessionID, (err, stored) =>
        err ? next(err) : res.json({ views: (stored as { views?: unknown } | null)?.views }),
      ),
    )
    a.post('/destroy', (req, res, next) =>
      req.sessionStore.destroy(req.sessionID, (err) => (err ? next(err) : res.send('gone'))),
    )
    const cookie = cookieOf(await request(a).post('/'))
    expect((await request(a).get('/stored').set('Cookie', cookie)).body).toEqual({ views: 1 })
    await request(a).post('/destroy').set('Cookie', cookie).expect(200)
    expect((await request(a).get('/data').set('Cookie', cookie)).body).toEqual({})
  })

  it("createSession(req, sess) makes sess the request's session, saved at the end of the request", async () => {
    const a = app()
    a.post('/replace', (req, res) => {
      const replaced = req.sessionStore.createSession(req, {
        views: 5,
        cookie: { originalMaxAge: null, expires: new Date('2099-01-01T00:00:00Z') },
      })
      res.json({ same: replaced === req.session, views: s(req).views, theme: s(req).theme })
    })
    const cookie = cookieOf(await request(a).post('/'))
    const replaced = await request(a).post('/replace').set('Cookie', cookie)
    expect(replaced.body).toEqual({ same: true, views: 5 })
    // The cookie took sess.cookie's expiry, and the data was saved as replaced.
    expect(String(replaced.headers['set-cookie'])).toMatch(/Expires=Thu, 01 Jan 2099 00:00:00 GMT/)
    expect((await request(a).get('/data').set('Cookie', cookie)).body).toEqual({ views: 5 })
  })

  it('createSession refuses a request without a drop-in session, and a cookie with a bad date, losing nothing', async () => {
    const store = new MemoryStore()
    expect(() => store.createSession({ sessionID: 'x', headers: {} } as never, {})).toThrow(
      /req has no session from concord-session\/express-session/,
    )
    const a = app(store)
    a.post('/bad', (req, res) => {
      try {
        req.sessionStore.createSession(req, {
          views: 9,
          cookie: { originalMaxAge: null, expires: 'never' },
        })
        res.send('accepted')
      } catch (err) {
        res.status(400).send((err as Error).message)
      }
    })
    const cookie = cookieOf(await request(a).post('/'))
    const bad = await request(a).post('/bad').set('Cookie', cookie)
    expect(bad.status).toBe(400)
    expect(bad.text).toMatch(/sess\.cookie\.expires is not a date/)
    // The bad date was found before anything changed: the session is as it was.
    expect((await request(a).get('/data').set('Cookie', cookie)).body).toEqual({
      views: 1,
      theme: 'dark',
    })
  })

  it('generate(req) throws a TypeError naming req.session.regenerate, and the session is untouched', async () => {
    const a = app()
    a.post('/generate', (req, res) => {
      try {
        req.sessionStore.generate(req)
      } catch (err) {
        res.status(500).json({ type: (err as Error).constructor.name, message: String(err) })
      }
    })
    const cookie = cookieOf(await request(a).post('/'))
    const generated = await request(a).post('/generate').set('Cookie', cookie)
    expect(generated.body.type).toBe('TypeError')
    expect(generated.body.message).toMatch(/use req\.session\.regenerate\(callback\)/)
    expect((await request(a).get('/data').set('Cookie', cookie)).body).toEqual({
      views: 1,
      theme: 'dark',
    })
  })

  it('cookie.signed can be set, as in express-session, and changes nothing: the cookie stays signed', async () => {
    const store = new MemoryStore()
    const a = app(store)
    a.post('/signed', (req, res) => {
      req.session.cookie.signed = false
      s(req).views = 2
      res.json({ signed: req.session.cookie.signed })
    })
    const cookie = cookieOf(await request(a).post('/'))
    const signed = await request(a).post('/signed').set('Cookie', cookie)
    expect(signed.body).toEqual({ signed: false })
    const sid = decodeURIComponent(cookie.split('=')[1]!).slice(2).split('.')[0]!
    const stored = await new Promise<Record<string, any>>((resolve, reject) =>
      store.get(sid, (err, value) => (err ? reject(err) : resolve(value))),
    )
    expect(stored.views).toBe(2)
    expect(stored.cookie).not.toHaveProperty('signed')
    expect(cookie).toMatch(/^connect\.sid=s%3A/)
  })
})
