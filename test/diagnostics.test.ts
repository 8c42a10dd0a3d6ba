/**
 * Tracing on diagnostics_channel: real subscribers on the published TracingChannels, the
 * contexts they receive (hashed ids, durations, conflicts and retries, store errors), and
 * nothing published once they unsubscribe.
 */
import diagnostics_channel from 'node:diagnostics_channel'
import express from 'express'
import request from 'supertest'
import session, {
  channels,
  deriveIdHashKey,
  hashSessionId,
  MemoryStore,
  StoreError,
  type SaveContext,
  type Store,
  type TracedContext,
} from '../entries/index'
import { cookiePair, sessionCookie } from './support/http'
import { GatedStore, SaveRejectingStore, SwitchableOutageStore } from './support/stores'

const SECRET = 'diagnostics-test-secret'
const KEY = deriveIdHashKey(SECRET)
type Data = Record<string, unknown>

function appWith(store: Store) {
  const app = express()
  app.use(session(store, { secret: SECRET }))
  app.post('/set/:key/:value', (req, res) => {
    ;(req.session as unknown as Data)[req.params.key!] = req.params.value
    res.json({ id: req.session.id })
  })
  app.get('/read', (req, res) => res.json({ ...req.session }))
  app.post('/reload', async (req, res) => {
    await req.session.reload()
    res.end('reloaded')
  })
  app.post('/touch', async (req, res) => {
    await req.session.touch()
    res.end('touched')
  })
  app.post('/logout', async (req, res) => {
    await req.session.destroy()
    res.end('bye')
  })
  app.use(
    (
      err: Error & { status?: number },
      _req: express.Request,
      res: express.Response,
      _next: express.NextFunction,
    ) => {
      res
        .status(err.status ?? 500)
        .type('text/plain')
        .send(err.message)
    },
  )
  return app
}

type Phase = 'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error'
interface Seen {
  channel: keyof typeof channels
  phase: Phase
  context: TracedContext & Data
  /** The context's fields as they were when the event was published. */
  snapshot: Data
}

/** Subscribes to every channel for one test; `stop()` unsubscribes. */
function subscribeAll(): { seen: Seen[]; stop(): void } {
  const seen: Seen[] = []
  const stops: Array<() => void> = []
  for (const name of Object.keys(channels) as Array<keyof typeof channels>) {
    const record = (phase: Phase) => (message: unknown) => {
      const context = message as TracedContext & Data
      seen.push({ channel: name, phase, context, snapshot: { ...context } })
    }
    const handlers = {
      start: record('start'),
      end: record('end'),
      asyncStart: record('asyncStart'),
      asyncEnd: record('asyncEnd'),
      error: record('error'),
    }
    // Subscribed by name, as an instrumentation that never imports concord-session would.
    const channel = diagnostics_channel.tracingChannel(`concord-session:${name}`)
    channel.subscribe(handlers)
    stops.push(() => channel.unsubscribe(handlers))
  }
  return { seen, stop: () => stops.forEach((stop) => stop()) }
}

async function newSession(app: express.Express): Promise<{ id: string; cookie: string }> {
  const res = await request(app).post('/set/a/1').expect(200)
  return { id: (res.body as { id: string }).id, cookie: cookiePair(sessionCookie(res)) }
}

describe('diagnostics_channel tracing', () => {
  let sub: ReturnType<typeof subscribeAll>
  beforeEach(() => {
    sub = subscribeAll()
  })
  afterEach(() => {
    sub.stop()
  })

  it('traces a load and a save through start, end, asyncStart and asyncEnd, with hashed ids and durations', async () => {
    const app = appWith(new MemoryStore())
    const { id, cookie } = await newSession(app)
    sub.seen.length = 0
    await request(app).post('/set/b/2').set('Cookie', cookie).expect(200)

    const phases = (channel: string) =>
      sub.seen.filter((s) => s.channel === channel).map((s) => s.phase)
    expect(phases('load')).toEqual(['start', 'end', 'asyncStart', 'asyncEnd'])
    expect(phases('save')).toEqual(['start', 'end', 'asyncStart', 'asyncEnd'])

    const load = sub.seen.find((s) => s.channel === 'load' && s.phase === 'asyncEnd')!
    expect(load.snapshot).toMatchObject({
      sessionId: hashSessionId(id, KEY),
      touch: true,
      found: true,
    })
    expect(load.snapshot.duration).toBeGreaterThanOrEqual(0)
    const save = sub.seen.find((s) => s.channel === 'save' && s.phase === 'asyncEnd')!
    expect(save.snapshot).toMatchObject({
      sessionId: hashSessionId(id, KEY),
      batched: 1,
      created: false,
      attempts: 1,
      conflicts: 0,
      retries: 0,
      outcome: 'saved',
      version: 2,
    })
    expect(save.snapshot.duration).toBeGreaterThanOrEqual(0)
    // The same context object travels through every phase of one operation.
    const start = sub.seen.find((s) => s.channel === 'save' && s.phase === 'start')!
    expect(start.context).toBe(save.context)
    expect(start.snapshot.duration).toBeUndefined()
    expect(JSON.stringify(sub.seen.map((s) => s.snapshot))).not.toContain(id)
  })

  it('marks a load of an unknown session as not found, and a first save as a create', async () => {
    const app = appWith(new MemoryStore())
    const res = await request(app)
      .post('/set/a/1')
      .set('Cookie', `connect.sid=s%3A${'00000000-0000-4000-8000-000000000000'}.x`)
      .expect(200)
    expect(sub.seen.filter((s) => s.channel === 'load')).toEqual([]) // a bad signature: no load
    const { id } = res.body as { id: string }
    const save = sub.seen.find((s) => s.channel === 'save' && s.phase === 'asyncEnd')!
    expect(save.snapshot).toMatchObject({
      sessionId: hashSessionId(id, KEY),
      created: true,
      version: 1,
    })

    const store = new MemoryStore()
    const other = appWith(store)
    const { cookie } = await newSession(other)
    await store.clear()
    sub.seen.length = 0
    await request(other).get('/read').set('Cookie', cookie).expect(200)
    const load = sub.seen.find((s) => s.channel === 'load' && s.phase === 'asyncEnd')!
    expect(load.snapshot).toMatchObject({ touch: true, found: false })
  })

  it('counts the conflict and the retry of a save that another process beat', async () => {
    const shared = new MemoryStore()
    const gated = new GatedStore(shared)
    const mine = appWith(gated) // this process
    const theirs = appWith(shared) // another process on the same store
    const { id, cookie } = await newSession(theirs)

    const gate = gated.hold('save')
    const slow = request(mine)
      .post('/set/x/mine')
      .set('Cookie', cookie)
      .then((res) => res)
    await gate.arrived(1) // loaded version 1, its save waiting
    gated.release('save') // the retry is not held
    await request(theirs).post('/set/y/theirs').set('Cookie', cookie).expect(200) // version 2
    gate.open()
    expect((await slow).status).toBe(200)

    const saves = sub.seen
      .filter((s) => s.channel === 'save' && s.phase === 'asyncEnd')
      .map((s) => s.snapshot as unknown as SaveContext)
    expect(saves.at(-1)).toMatchObject({
      sessionId: hashSessionId(id, KEY),
      attempts: 2,
      conflicts: 1,
      retries: 1,
      outcome: 'saved',
      version: 3,
    })
    expect(gated.conflicts).toBe(1)
    expect((await shared.load(hashSessionId(id, KEY)))?.data).toEqual({
      a: '"1"',
      x: '"mine"',
      y: '"theirs"',
    })
  })

  it('publishes a store failure on error, with the StoreError and the duration', async () => {
    const store = new SwitchableOutageStore()
    const app = appWith(store)
    const { id, cookie } = await newSession(app)
    store.down = true
    sub.seen.length = 0
    const res = await request(app).get('/read').set('Cookie', cookie)
    expect(res.status).toBe(503)
    expect(sub.seen.map((s) => `${s.channel}:${s.phase}`)).toEqual([
      'load:start',
      'load:end',
      'load:error',
      'load:asyncStart',
      'load:asyncEnd',
    ])
    const error = sub.seen.find((s) => s.phase === 'error')!
    expect(error.snapshot.error).toBeInstanceOf(StoreError)
    expect(error.snapshot.duration).toBeGreaterThanOrEqual(0)
    expect(error.snapshot.sessionId).toBe(hashSessionId(id, KEY))
  })

  it('publishes a failed save on the save channel', async () => {
    const app = appWith(new SaveRejectingStore())
    const res = await request(app).post('/set/b/2')
    expect(res.status).toBe(503)
    const error = sub.seen.find((s) => s.channel === 'save' && s.phase === 'error')!
    expect(error.snapshot).toMatchObject({ created: true, attempts: 1, conflicts: 0 })
    expect(error.snapshot.outcome).toBeUndefined()
    expect(error.snapshot.error).toBeInstanceOf(StoreError)
    expect((error.snapshot.error as Error).message).toMatch(/EROFS/)
    expect(error.snapshot.duration).toBeGreaterThanOrEqual(0)
  })

  it('traces destroy, reload (a load without touch) and touch', async () => {
    const app = appWith(new MemoryStore())
    const { id, cookie } = await newSession(app)
    sub.seen.length = 0
    await request(app).post('/reload').set('Cookie', cookie).expect(200)
    await request(app).post('/touch').set('Cookie', cookie).expect(200)
    await request(app).post('/logout').set('Cookie', cookie).expect(200)
    const ends = sub.seen.filter((s) => s.phase === 'asyncEnd').map((s) => [s.channel, s.snapshot])
    const sessionId = hashSessionId(id, KEY)
    expect(ends).toEqual([
      ['load', expect.objectContaining({ sessionId, touch: true, found: true })],
      ['load', expect.objectContaining({ sessionId, touch: false, found: true })],
      ['load', expect.objectContaining({ sessionId, touch: true })],
      ['touch', expect.objectContaining({ sessionId, duration: expect.any(Number) })],
      ['load', expect.objectContaining({ sessionId, touch: true })],
      ['destroy', expect.objectContaining({ sessionId, reason: 'destroy' })],
    ])
  })

  it('publishes nothing once the subscribers are gone', async () => {
    const app = appWith(new MemoryStore())
    const { cookie } = await newSession(app)
    sub.stop()
    expect(channels.load.hasSubscribers).toBe(false)
    expect(channels.save.hasSubscribers).toBe(false)
    sub.seen.length = 0
    await request(app).post('/set/b/2').set('Cookie', cookie).expect(200)
    await request(app).post('/logout').set('Cookie', cookie).expect(200)
    expect(sub.seen).toEqual([])
  })
})
