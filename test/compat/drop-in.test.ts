/**
 * What the drop-in adds around the core: express-session's calling conventions on req.session,
 * req.sessionStore as the store the app passed, the constructors on the default export, and
 * concord stores and extras where an app wants them.
 */
import { EventEmitter } from 'node:events'
import express from 'express'
import request from 'supertest'
import session, { Cookie, MemoryStore, Session, Store } from '../../entries/express-session.js'
import { MemoryStore as ConcordMemoryStore } from '../../entries/index.js'
import { SyncCallbackStore } from './support/fakes.js'
import { cookieOf, sess as s } from './support/http.js'
import { useFakeDate } from '../support/clock.js'

const SECRET = 'drop-in-secret'

/** set() fails while `failSets` is true; everything else works. */
class SetFailingStore extends SyncCallbackStore {
  failSets = false
  override set(sid: string, sess: object, callback?: (err?: unknown) => void): void {
    if (this.failSets) setImmediate(() => callback?.(new Error('disk full')))
    else super.set(sid, sess, callback)
  }
}

describe('the express-session drop-in', () => {
  it('exposes Store, Cookie, Session and MemoryStore on the default export, as express-session does', () => {
    expect(session.Store).toBe(Store)
    expect(session.Cookie).toBe(Cookie)
    expect(session.Session).toBe(Session)
    expect(session.MemoryStore).toBe(MemoryStore)
    expect(new MemoryStore()).toBeInstanceOf(Store)
    expect(new MemoryStore()).toBeInstanceOf(EventEmitter)
  })

  it('req.session is a Session with a Cookie, and req.sessionStore is the store the app passed', async () => {
    const store = new SyncCallbackStore()
    const app = express()
    app.use(session({ secret: SECRET, store, resave: false, saveUninitialized: false }))
    app.get('/', (req, res) => {
      res.json({
        session: req.session instanceof Session,
        cookie: req.session.cookie instanceof Cookie,
        store: (req.sessionStore as unknown) === store,
        keys: Object.keys(req.session),
      })
    })
    // As express-session: the methods are hidden, the cookie is an own key.
    expect((await request(app).get('/')).body).toEqual({
      session: true,
      cookie: true,
      store: true,
      keys: ['cookie'],
    })
  })

  it("the default store answers express-session's callback API on req.sessionStore", async () => {
    const app = express()
    app.use(session({ secret: SECRET, resave: false, saveUninitialized: false }))
    app.post('/', (req, res) => {
      s(req).n = 1
      res.send('ok')
    })
    app.get('/count', (req, res, next) => {
      const store = req.sessionStore as unknown as MemoryStore
      store.length((err, n) =>
        err
          ? next(err)
          : store.all((err2, all) => (err2 ? next(err2) : res.json({ n, ids: Object.keys(all) }))),
      )
    })
    const cookie = cookieOf(await request(app).post('/'))
    const { body } = await request(app).get('/count').set('Cookie', cookie)
    expect(body.n).toBe(1)
    expect(body.ids).toHaveLength(1)
  })

  it('each req.session method takes a callback and also returns a promise', async () => {
    const app = express()
    app.use(session({ secret: SECRET, resave: false, saveUninitialized: false }))
    app.post('/all', async (req, res, next) => {
      try {
        s(req).a = 1
        await new Promise<void>((resolve, reject) =>
          s(req).save((err?: Error) => (err ? reject(err) : resolve())),
        )
        await s(req).reload()
        await new Promise<void>((resolve, reject) =>
          s(req).touch((err?: Error) => (err ? reject(err) : resolve())),
        )
        const before = req.sessionID
        await s(req).regenerate({ keepData: true }) // concord's extension: the data survives
        res.json({ a: s(req).a, changed: before !== req.sessionID })
      } catch (err) {
        next(err)
      }
    })
    expect((await request(app).post('/all')).body).toEqual({ a: 1, changed: true })
  })

  it('a method called without a callback never crashes the process when the store fails, as in express-session', async () => {
    const store = new SetFailingStore()
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      const app = express()
      app.use(session({ secret: SECRET, store, resave: false, saveUninitialized: false }))
      app.post('/start', (req, res) => {
        s(req).n = 1
        res.send('ok')
      })
      app.post('/fire-and-forget', (req, res) => {
        s(req).save() // express-session: fn || function () {}
        s(req).touch()
        res.send('answered')
      })
      app.post('/regenerate-then-save', (req, res) => {
        s(req).regenerate(() => {
          s(req).save() // the new session's methods are wrapped too
          res.send('answered')
        })
      })
      const cookie = cookieOf(await request(app).post('/start'))
      store.failSets = true
      const res = await request(app).post('/fire-and-forget').set('Cookie', cookie)
      expect([res.status, res.text]).toEqual([200, 'answered'])
      const regenerated = await request(app).post('/regenerate-then-save').set('Cookie', cookie)
      expect([regenerated.status, regenerated.text]).toEqual([200, 'answered']) // the empty new session needs no write at the end
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })

  it("a store failure reaches the app as the store's own error, as in express-session", async () => {
    const store = new SetFailingStore()
    store.failSets = true
    const app = express()
    app.use(session({ secret: SECRET, store, resave: false, saveUninitialized: false }))
    app.post('/', (req, res, next) => {
      s(req).n = 1
      s(req).save((err?: Error & { status?: number }) =>
        err ? res.status(err.status ?? 500).json({ name: err.name, status: err.status }) : next(),
      )
    })
    expect((await request(app).post('/')).body).toEqual({ name: 'Error' })
    const error = await new Promise((resolve) => {
      const probe = express()
      probe.use(session({ secret: SECRET, store, resave: false, saveUninitialized: false }))
      probe.post('/', (req, _res, next) => {
        s(req).n = 1
        s(req).save((err?: Error) => resolve(err))
        next()
      })
      void request(probe)
        .post('/')
        .then(
          () => {},
          () => {},
        )
    })
    expect(error).toMatchObject({ message: 'disk full' })
  })

  it('takes a concord Store as well, with its full guarantees', async () => {
    const store = new ConcordMemoryStore()
    const app = express()
    app.use(session({ secret: SECRET, store, resave: false, saveUninitialized: false }))
    app.post('/', (req, res) => {
      s(req).n = 1
      s(req).setUser('ann')
      res.json({ store: (req.sessionStore as unknown) === store })
    })
    expect((await request(app).post('/')).body).toEqual({ store: true })
    expect(await store.listByUser('ann')).toHaveLength(1)
    await store.close()
  })

  describe('with a test clock', () => {
    const clock = useFakeDate()

    it("passes concord's extras through: absoluteTimeout ends a session however active", async () => {
      const store = new ConcordMemoryStore() // closed below: its sweep timer must not outlive the fake clock
      const app = express()
      app.use(
        session({
          secret: SECRET,
          store,
          resave: false,
          saveUninitialized: false,
          absoluteTimeout: 150,
        }),
      )
      app.get('/', (req, res) => {
        s(req).views = (s(req).views ?? 0) + 1
        res.json(s(req).views)
      })
      const first = await request(app).get('/')
      const cookie = cookieOf(first)
      clock.advance(149)
      expect((await request(app).get('/').set('Cookie', cookie)).body).toBe(2)
      clock.advance(1)
      expect((await request(app).get('/').set('Cookie', cookie)).body).toBe(1)
      await store.close()
    })
  })

  it('steps aside for a session an outer middleware already made', async () => {
    const app = express()
    app.use(session({ secret: SECRET, resave: false, saveUninitialized: false }))
    app.use(session({ secret: 'other', resave: false, saveUninitialized: false }))
    app.get('/', (req, res) => {
      s(req).n = 1
      res.send('ok')
    })
    const res = await request(app).get('/')
    expect(([] as string[]).concat(res.headers['set-cookie'] ?? [])).toHaveLength(1)
  })
})
