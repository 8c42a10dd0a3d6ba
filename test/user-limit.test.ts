/**
 * maxSessionsPerUser through the middleware: the option's validation, the refused sign-in as a
 * SessionLimitError the app can catch (the session stays unlinked, nothing else is lost), the
 * end-of-request refusal as a 409, and eviction of the oldest sessions.
 */
import express from 'express'
import request from 'supertest'
import session, { MemoryStore, SessionLimitError, sessionInfo } from '../entries/index'
import { adaptLegacyStore } from '../entries/express-session'
import dropIn from '../entries/express-session'
import { cookiePair, sessionCookie } from './support/http'
import { storedId } from './support/at-rest'

type Data = Record<string, unknown>
const data = (req: express.Request) => req.session as unknown as Data
const SECRET = 'user-limit-secret'

function app(store: MemoryStore, maxSessionsPerUser: unknown) {
  const app = express()
  app.use(session(store, { secret: SECRET, maxSessionsPerUser } as never))
  // The documented pattern: link, save, and answer a refusal with a page of its own.
  app.post('/login/:user', async (req, res, next) => {
    data(req).cart = ['tea']
    req.session.setUser(req.params.user!)
    try {
      await req.session.save()
    } catch (err) {
      if (!(err instanceof SessionLimitError)) return next(err)
      return res.status(409).json({
        refused: err.message,
        code: err.code,
        max: err.max,
        userId: sessionInfo(req.session).userId ?? null,
        id: req.session.id,
      })
    }
    res.json({ id: req.session.id })
  })
  // No explicit save: a refusal at the end of the request goes to the error handler.
  app.post('/quick-login/:user', (req, res) => {
    req.session.setUser(req.params.user!)
    res.json({ id: req.session.id })
  })
  app.get('/whoami', (req, res) =>
    res.json({ id: req.session.id, userId: sessionInfo(req.session).userId ?? null }),
  )
  app.use(
    (err: Error & { status?: number }, _req: express.Request, res: express.Response, _n: unknown) =>
      res.status(err.status ?? 500).json({ error: err.name, message: err.message }),
  )
  return app
}

describe('maxSessionsPerUser', () => {
  it('rejects values that are not a limit at setup, saying what to pass', () => {
    const store = new MemoryStore()
    for (const bad of [0, -1, 1.5, '3', { max: 0 }, { onLimit: 'refuse' }, null]) {
      expect(() => session(store, { secret: SECRET, maxSessionsPerUser: bad as never })).toThrow(
        /maxSessionsPerUser must be at least 1 session; pass a positive integer/,
      )
    }
    expect(() =>
      session(store, { secret: SECRET, maxSessionsPerUser: { max: 2, onLimit: 'kick' as never } }),
    ).toThrow(/onLimit must be 'evictOldest' or 'refuse', got "kick"/)
    expect(() =>
      session(store, { secret: SECRET, maxSessionsPerUser: { max: 2, extra: 1 } as never }),
    ).toThrow(/maxSessionsPerUser has no option "extra"/)
    expect(() => session(store, { secret: SECRET, maxSessionsPerUser: 2 })).not.toThrow()
  })

  it('refuses an express-session store, which cannot enforce it, at setup', () => {
    const adapted = adaptLegacyStore(new dropIn.MemoryStore())
    expect(() => session(adapted, { secret: SECRET, maxSessionsPerUser: 3 })).toThrow(
      /maxSessionsPerUser needs a store that enforces it atomically; .* an adapted express-session store cannot/,
    )
  })

  it('passes through the express-session drop-in', async () => {
    const store = new MemoryStore()
    const web = express()
    web.use(dropIn({ secret: SECRET, store, maxSessionsPerUser: 1, resave: false }))
    web.post('/login', async (req, res) => {
      req.session.setUser('ann')
      await req.session.save()
      res.json({ id: req.session.id })
    })
    const first = await request(web).post('/login')
    const second = await request(web).post('/login')
    expect(await store.load(storedId(first.body.id, SECRET))).toBeNull()
    expect(await store.listByUser('ann')).toEqual([storedId(second.body.id, SECRET)])
  })

  it('refuse: the sign-in fails with a SessionLimitError, the session stays unlinked, and its other changes are kept', async () => {
    const store = new MemoryStore()
    const web = app(store, { max: 2, onLimit: 'refuse' })
    const ok = [await request(web).post('/login/ann'), await request(web).post('/login/ann')]
    for (const res of ok) expect(res.status).toBe(200)

    const refused = await request(web).post('/login/ann')
    expect(refused.status).toBe(409)
    expect(refused.body).toMatchObject({ code: 'ESESSIONLIMIT', max: 2, userId: null })
    expect(refused.body.refused).toMatch(/already has 2 sessions/)
    // The app's other change in that request was saved at its end, without the link.
    const record = await store.load(storedId(refused.body.id, SECRET))
    expect(record?.data).toEqual({ cart: '["tea"]' })
    expect(record?.userId).toBeUndefined()
    expect((await store.listByUser('ann')).sort()).toEqual(
      ok.map((r) => storedId(r.body.id, SECRET)).sort(),
    )

    // That browser is still anonymous; the first two are still signed in.
    const who = await request(web)
      .get('/whoami')
      .set('Cookie', cookiePair(sessionCookie(refused)))
    expect(who.body).toEqual({ id: refused.body.id, userId: null })
  })

  it('refuse: without an explicit save, the end-of-request refusal is a 409 for the error handler', async () => {
    const store = new MemoryStore()
    const web = app(store, { max: 1, onLimit: 'refuse' })
    expect((await request(web).post('/quick-login/bob')).status).toBe(200)
    const refused = await request(web).post('/quick-login/bob')
    expect(refused.status).toBe(409)
    expect(refused.body).toMatchObject({ error: 'SessionLimitError' })
    expect(await store.listByUser('bob')).toHaveLength(1)
  })

  it('evictOldest: a sign-in past the limit ends the oldest session, whose cookie then gets a fresh one', async () => {
    const store = new MemoryStore()
    const web = app(store, 2)
    const first = await request(web).post('/login/cy')
    const second = await request(web).post('/login/cy')
    const third = await request(web).post('/login/cy')
    expect(third.status).toBe(200)
    expect(await store.load(storedId(first.body.id, SECRET))).toBeNull()
    expect((await store.listByUser('cy')).sort()).toEqual(
      [second.body.id, third.body.id].map((id) => storedId(id, SECRET)).sort(),
    )
    const evicted = await request(web)
      .get('/whoami')
      .set('Cookie', cookiePair(sessionCookie(first)))
    expect(evicted.body.id).not.toBe(first.body.id)
    expect(evicted.body.userId).toBeNull()
  })
})
