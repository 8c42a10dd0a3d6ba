/**
 * Real clients of express-session, each set up exactly as its README shows, with only the
 * session import changed: passport 0.7 with passport-local (login regenerates the session,
 * keepSessionInfo, save before redirect, logout), connect-flash, and a CSRF token kept in
 * the session.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import express, { type Request, type RequestHandler } from 'express'
import request from 'supertest'
import session from '../../entries/express-session.js'
import { SyncCallbackStore } from './support/fakes.js'
import { sess } from './support/http.js'

type Done = (err?: unknown, value?: unknown) => void

interface Passport {
  use(strategy: unknown): void
  serializeUser(fn: (user: any, done: Done) => void): void
  deserializeUser(fn: (user: any, done: Done) => void): void
  authenticate(name: string, options?: Record<string, unknown>): RequestHandler
  initialize(): RequestHandler
}

// The packages ship no types; the README's calls are all these tests make.
const { Passport } = require('passport') as { Passport: new () => Passport }
const { Strategy: LocalStrategy } = require('passport-local') as {
  Strategy: new (verify: (username: string, password: string, done: Done) => void) => unknown
}
const flash = require('connect-flash') as () => RequestHandler

type AuthedRequest = Request & {
  user?: { id: string; username: string }
  logout(done: Done): void
  flash(type: string, msg?: string): string[]
}
const USERS = [{ id: '1', username: 'alice', password: 'wonderland' }]

function passportApp(store: SyncCallbackStore, loginOptions: Record<string, unknown> = {}) {
  const passport = new Passport()
  passport.use(
    new LocalStrategy((username, password, done) => {
      const user = USERS.find((u) => u.username === username)
      if (!user || user.password !== password) return done(null, false)
      done(null, user)
    }),
  )
  passport.serializeUser((user, done) =>
    process.nextTick(() => done(null, { id: user.id, username: user.username })),
  )
  passport.deserializeUser((user, done) => process.nextTick(() => done(null, user)))

  const app = express()
  app.use(express.urlencoded({ extended: false }))
  app.use(session({ secret: 'keyboard cat', resave: false, saveUninitialized: false, store }))
  app.use(passport.authenticate('session'))
  app.get('/', (req, res) => {
    const r = req as AuthedRequest
    res.json({ user: r.user?.username ?? null, cart: sess(req).cart ?? null, sid: req.sessionID })
  })
  app.post('/cart/:item', (req, res) => {
    sess(req).cart = [...(sess(req).cart ?? []), req.params.item]
    res.json({ cart: sess(req).cart, sid: req.sessionID })
  })
  app.post(
    '/login/password',
    passport.authenticate('local', {
      successRedirect: '/',
      failureRedirect: '/login',
      ...loginOptions,
    }),
  )
  app.post('/logout', (req, res, next) => {
    ;(req as AuthedRequest).logout((err) => {
      if (err) return next(err)
      res.redirect('/')
    })
  })
  return app
}

const sessionId = (cookie: string) =>
  decodeURIComponent(cookie.split(';')[0]!.split('=')[1]!).slice(2).split('.')[0]

describe('passport 0.7 with passport-local, on the drop-in', () => {
  it('logs in on a new session id, saved before the redirect, and keeps the user across requests', async () => {
    const store = new SyncCallbackStore()
    const agent = request.agent(passportApp(store))
    const before = await agent.post('/cart/book')
    const oldId = before.body.sid as string
    const login = await agent
      .post('/login/password')
      .type('form')
      .send({ username: 'alice', password: 'wonderland' })
    expect([login.status, login.headers.location]).toEqual([302, '/'])
    const newId = sessionId(([] as string[]).concat(login.headers['set-cookie'] ?? [])[0]!)
    expect(newId).not.toBe(oldId) // regenerated: a fixed id is useless after login
    // Saved before the redirect went out: the store already has the user under the new id.
    expect(JSON.parse(store.sessions.get(newId!)!).passport).toEqual({
      user: { id: '1', username: 'alice' },
    })
    expect(store.sessions.has(oldId)).toBe(false)
    const home = await agent.get('/')
    expect(home.body).toEqual({ user: 'alice', cart: null, sid: newId }) // without keepSessionInfo the cart is gone
  })

  it('keepSessionInfo: the data from before login survives on the new id', async () => {
    const agent = request.agent(passportApp(new SyncCallbackStore(), { keepSessionInfo: true }))
    const oldId = (await agent.post('/cart/book')).body.sid as string
    await agent
      .post('/login/password')
      .type('form')
      .send({ username: 'alice', password: 'wonderland' })
    const home = await agent.get('/')
    expect(home.body.user).toBe('alice')
    expect(home.body.cart).toEqual(['book'])
    expect(home.body.sid).not.toBe(oldId)
  })

  it('a wrong password redirects to /login and logs nobody in', async () => {
    const agent = request.agent(passportApp(new SyncCallbackStore()))
    const login = await agent
      .post('/login/password')
      .type('form')
      .send({ username: 'alice', password: 'nope' })
    expect([login.status, login.headers.location]).toEqual([302, '/login'])
    expect((await agent.get('/')).body.user).toBeNull()
  })

  it('logout removes the user from the stored session and moves to a new id', async () => {
    const store = new SyncCallbackStore()
    const agent = request.agent(passportApp(store))
    const app = passportApp(store)
    const login = await agent
      .post('/login/password')
      .type('form')
      .send({ username: 'alice', password: 'wonderland' })
    const loggedInCookie = ([] as string[])
      .concat(login.headers['set-cookie'] ?? [])[0]!
      .split(';')[0]!
    const loggedIn = (await agent.get('/')).body.sid as string
    const logout = await agent.post('/logout')
    expect([logout.status, logout.headers.location]).toEqual([302, '/'])
    expect(store.sessions.has(loggedIn)).toBe(false)
    expect((await agent.get('/')).body.user).toBeNull()
    // The logged-in cookie, replayed after logout, finds nothing.
    const replay = await request(app).get('/').set('Cookie', loggedInCookie)
    expect(replay.body.user).toBeNull()
    expect(replay.body.sid).not.toBe(loggedIn)
  })
})

describe('connect-flash, on the drop-in', () => {
  it('shows a message once, on the request after the redirect', async () => {
    const app = express()
    app.use(
      session({
        secret: 'keyboard cat',
        cookie: { maxAge: 60000 },
        resave: false,
        saveUninitialized: false,
      }),
    )
    app.use(flash())
    app.get('/flash', (req, res) => {
      ;(req as AuthedRequest).flash('info', 'Flash is back!')
      res.redirect('/')
    })
    app.get('/', (req, res) => res.json({ messages: (req as AuthedRequest).flash('info') }))
    const agent = request.agent(app)
    const redirect = await agent.get('/flash')
    expect([redirect.status, redirect.headers.location]).toEqual([302, '/'])
    expect((await agent.get('/')).body.messages).toEqual(['Flash is back!'])
    expect((await agent.get('/')).body.messages).toEqual([])
  })
})

describe('a CSRF token kept in the session, on the drop-in', () => {
  function csrfApp() {
    const app = express()
    app.use(express.urlencoded({ extended: false }))
    app.use(session({ secret: 'keyboard cat', resave: false, saveUninitialized: false }))
    app.get('/form', (req, res) => {
      sess(req).csrfToken ??= randomBytes(32).toString('base64url')
      res.json({ token: sess(req).csrfToken })
    })
    app.post('/login', (req, res, next) => {
      // A new id at login, and with it a new token: the pre-login one is void.
      void req.session.regenerate((err) => {
        if (err) next(err)
        else res.json({ ok: true })
      })
    })
    app.post('/transfer', (req, res) => {
      const expected = Buffer.from(String(sess(req).csrfToken ?? ''))
      const given = Buffer.from(String(req.body._csrf ?? ''))
      if (
        expected.length === 0 ||
        expected.length !== given.length ||
        !timingSafeEqual(expected, given)
      ) {
        return res.status(403).json({ error: 'invalid csrf token' })
      }
      res.json({ transferred: true })
    })
    return app
  }

  it('accepts the token issued to this session, and only that one', async () => {
    const agent = request.agent(csrfApp())
    const { token } = (await agent.get('/form')).body as { token: string }
    expect((await agent.get('/form')).body.token).toBe(token) // kept in the session
    expect((await agent.post('/transfer').type('form').send({ _csrf: token })).body).toEqual({
      transferred: true,
    })
    expect(
      (
        await agent
          .post('/transfer')
          .type('form')
          .send({ _csrf: token.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) })
      ).status,
    ).toBe(403)
    expect((await agent.post('/transfer').type('form').send({})).status).toBe(403)
    // Another browser, with its own session, cannot use this one's token.
    expect(
      (await request.agent(csrfApp()).post('/transfer').type('form').send({ _csrf: token })).status,
    ).toBe(403)
  })

  it('voids the token when the session is regenerated at login', async () => {
    const agent = request.agent(csrfApp())
    const { token } = (await agent.get('/form')).body as { token: string }
    await agent.post('/login')
    expect((await agent.post('/transfer').type('form').send({ _csrf: token })).status).toBe(403)
    const fresh = (await agent.get('/form')).body.token as string
    expect(fresh).not.toBe(token)
    expect((await agent.post('/transfer').type('form').send({ _csrf: fresh })).status).toBe(200)
  })
})
