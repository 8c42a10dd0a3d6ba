/**
 * A failing store fails the request closed with a 503 StoreError, keeps the process alive,
 * and recovers when the store does.
 */
import express from 'express'
import request from 'supertest'
import session, { StoreError, type Store } from '../entries/index'
import { signSessionId } from '../lib/cookie'
import { cookiePair, sessionCookie } from './support/http'
import {
  CorruptDataStore,
  SaveRejectingStore,
  SwitchableOutageStore,
  SyncThrowingStore,
} from './support/stores'

type Data = Record<string, unknown>

function appOver(store: Store) {
  const errors: unknown[] = []
  const app = express()
  app.use(session(store, { secret: 'failure-test-secret' }))
  app.post('/add', (req, res) => {
    ;(req.session as unknown as Data).cart = ['tea']
    res.send('added')
  })
  app.get('/read', (req, res) => res.json({ ...req.session }))
  app.use(
    (
      err: Error & { status?: number },
      _req: express.Request,
      res: express.Response,
      _next: express.NextFunction,
    ) => {
      errors.push(err)
      res.status(err.status ?? 500).send(`${err.name}: ${err.message}`)
    },
  )
  return { app, errors }
}

describe('a store that fails', () => {
  it('is down: 503 StoreError from next(err), and requests succeed again once it is back', async () => {
    const store = new SwitchableOutageStore()
    const { app, errors } = appOver(store)
    const cookie = cookiePair(sessionCookie(await request(app).post('/add')))

    store.down = true
    const down = await request(app).get('/read').set('Cookie', cookie)
    expect(down.status).toBe(503)
    expect(errors[0]).toBeInstanceOf(StoreError)
    expect((errors[0] as StoreError).message).toMatch(
      /session store load failed for session .*ECONNREFUSED/,
    )
    expect((errors[0] as StoreError).cause).toMatchObject({ code: 'ECONNREFUSED' })

    store.down = false
    const back = await request(app).get('/read').set('Cookie', cookie)
    expect(back.status).toBe(200)
    expect(back.body).toEqual({ cart: ['tea'] })
  })

  it('rejects the save: 503 instead of the handler\'s "added", no cookie, nothing half-written', async () => {
    const store = new SaveRejectingStore()
    const { app, errors } = appOver(store)
    const res = await request(app).post('/add')
    expect(res.status).toBe(503)
    expect(res.text).toMatch(/StoreError: session store save failed .*EROFS/)
    expect(res.headers['set-cookie']).toBeUndefined()
    expect(errors).toHaveLength(1)
  })

  it('throws synchronously: still a 503, not a crash', async () => {
    const store = new SyncThrowingStore()
    const seed = appOver(store.inner)
    const cookie = cookiePair(sessionCookie(await request(seed.app).post('/add')))
    const { app } = appOver(store)
    const res = await request(app).get('/read').set('Cookie', cookie)
    expect(res.status).toBe(503)
    expect(res.text).toMatch(/store exploded synchronously/)
  })

  it('holds data that is not JSON: a 503 naming the session and key', async () => {
    const store = new CorruptDataStore()
    const { app } = appOver(store)
    const created = await request(app).post('/add')
    const res = await request(app)
      .get('/read')
      .set('Cookie', cookiePair(sessionCookie(created)))
    expect(res.status).toBe(503)
    expect(res.text).toMatch(/StoreError: session [\w-]+: stored key "cart" is not valid JSON/)
  })

  it("has no error handler after it: Express's default handler answers 503", async () => {
    const store = new SwitchableOutageStore()
    store.down = true
    const app = express()
    app.use(session(store, { secret: 's' }))
    app.get('/', (_req, res) => res.send('never'))
    const cookie = `connect.sid=${encodeURIComponent(signSessionId('some-id-000', 's'))}`
    const res = await request(app).get('/').set('Cookie', cookie)
    expect(res.status).toBe(503)
  })
})
