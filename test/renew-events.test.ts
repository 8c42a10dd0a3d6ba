/** A renewal done by the middleware reaches `onEvent` as one 'renewed' event, ids hashed. */
import express from 'express'
import request from 'supertest'
import session, {
  deriveIdHashKey,
  hashSessionId,
  MemoryStore,
  type SessionEvent,
} from '../entries/index'
import { cookiePair, sessionCookie } from './support/http'

const SECRET = 'renew-events-secret'
const KEY = deriveIdHashKey(SECRET)

describe("renewal's lifecycle event", () => {
  const stores: MemoryStore[] = []
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()))
  })

  function appWith(renew: { afterRequests: number }) {
    const store = new MemoryStore()
    stores.push(store)
    const events: SessionEvent[] = []
    const app = express()
    app.use(session(store, { secret: SECRET, renew, onEvent: (e) => void events.push(e) }))
    app.post('/login', (req, res) => {
      req.session.setUser('ada')
      res.json({ id: req.session.id })
    })
    app.get('/id', (req, res) => res.json({ id: req.session.id }))
    return { app, events }
  }

  it('is emitted once, with the old and new hashes and the owner', async () => {
    const { app, events } = appWith({ afterRequests: 2 })
    const login = await request(app).post('/login').expect(200)
    const oldId = (login.body as { id: string }).id
    const cookie = cookiePair(sessionCookie(login))
    const first = await request(app).get('/id').set('Cookie', cookie).expect(200)
    expect((first.body as { id: string }).id).toBe(oldId)
    const second = await request(app).get('/id').set('Cookie', cookie).expect(200)
    const newId = (second.body as { id: string }).id
    expect(newId).not.toBe(oldId)

    expect(events.filter((e) => e.type === 'renewed')).toEqual([
      {
        type: 'renewed',
        sessionId: hashSessionId(newId, KEY),
        previousSessionId: hashSessionId(oldId, KEY),
        userId: 'ada',
        at: expect.any(Number),
      },
    ])
  })

  it('is one event per renewal, also for one reached through the grace', async () => {
    const { app, events } = appWith({ afterRequests: 1 })
    const res = await request(app).post('/login').expect(200)
    const cookie = cookiePair(sessionCookie(res))
    await request(app).get('/id').set('Cookie', cookie).expect(200) // renews
    // The old cookie within the grace reaches the renewed session, due again with
    // afterRequests: 1: a second renewal, from the new id, and a second event.
    await request(app).get('/id').set('Cookie', cookie).expect(200)
    const renewed = events.filter((e) => e.type === 'renewed')
    expect(renewed).toHaveLength(2)
    expect(renewed[1]!.type === 'renewed' && renewed[1]!.previousSessionId).toBe(
      renewed[0]!.sessionId,
    )
  })
})
