/**
 * How session() hooks the response (res.writeHead and res.end, as the response's own
 * properties) alongside other code that wraps or replaces the same methods: before it, after
 * it, or on an app's response prototype.
 */
import { IncomingMessage, OutgoingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import express, { type RequestHandler } from 'express'
import request from 'supertest'
import session, { MemoryStore, type Store } from '../entries/index'
import dropIn from '../entries/express-session'
import { cookiePair, sessionCookie, setCookies } from './support/http'
import { CountingStore, SaveRejectingStore } from './support/stores'

const SECRET = 'response-hook-test-secret'
type Data = Record<string, unknown>
type Method = (...args: unknown[]) => unknown

/** /add/:key stores a key, /stream stores one and streams the body, /read shows the session. */
function routes(app: express.Express): express.Express {
  app.post('/add/:key', (req, res) => {
    ;(req.session as unknown as Data)[req.params.key!] = true
    res.type('text').end('added')
  })
  app.get('/stream', (req, res) => {
    ;(req.session as unknown as Data).streamed = true
    res.write('first,')
    res.end('last')
  })
  app.get('/read', (req, res) => res.json({ ...req.session }))
  return app
}

/** A compression-style wrapper of res.end that calls through, once: a second call is dropped. */
const wrapsEndOnce: RequestHandler = (_req, res, next) => {
  const end = res.end as unknown as Method
  let ended = false
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    if (ended) return this
    ended = true
    if (!res.headersSent) res.setHeader('X-Wrapped-End', 'yes')
    return end.apply(this, args)
  } as typeof res.end
  next()
}

/** An on-headers-style wrapper of res.writeHead that calls through. */
const wrapsWriteHead: RequestHandler = (_req, res, next) => {
  const writeHead = res.writeHead as unknown as Method
  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    this.setHeader('X-Wrapped-Head', 'yes')
    return writeHead.apply(this, args)
  } as typeof res.writeHead
  next()
}

/** A wrapper of res.end that calls through on a later turn, after its own end() returned. */
const defersEnd: RequestHandler = (_req, res, next) => {
  const end = res.end as unknown as Method
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    if (!this.headersSent) this.setHeader('X-Deferred-End', 'yes')
    setImmediate(() => end.apply(this, args))
    return this
  } as typeof res.end
  next()
}

describe('the response hook', () => {
  it.each([
    ['res.end, before session()', 'before', wrapsEndOnce, 'x-wrapped-end'],
    ['res.end calling through later, before session()', 'before', defersEnd, 'x-deferred-end'],
    ['res.end, after session()', 'after', wrapsEndOnce, 'x-wrapped-end'],
    ['res.writeHead, before session()', 'before', wrapsWriteHead, 'x-wrapped-head'],
    ['res.writeHead, after session()', 'after', wrapsWriteHead, 'x-wrapped-head'],
  ])('saves and sets the cookie with a wrapper of %s', async (_name, where, wrapper, header) => {
    const app = express()
    if (where === 'before') app.use(wrapper)
    app.use(session(new MemoryStore(), { secret: SECRET }))
    if (where === 'after') app.use(wrapper)
    routes(app)
    const first = await request(app).post('/add/a')
    expect([first.status, first.text, first.headers[header]]).toEqual([200, 'added', 'yes'])
    const cookie = cookiePair(sessionCookie(first))
    expect((await request(app).get('/stream').set('Cookie', cookie)).text).toBe('first,last')
    expect((await request(app).get('/read').set('Cookie', cookie)).body).toEqual({
      a: true,
      streamed: true,
    })
  })

  it('saves once in a mounted app whose response prototype has its own end and writeHead', async () => {
    const store = new CountingStore()
    const app = express()
    app.use(session(store, { secret: SECRET }))
    const sub = express()
    // Straight to Node's methods, as code that captured them at start-up would call them.
    // Express puts the response on this prototype after session() has hooked it.
    const prototype = sub.response as unknown as Record<string, Method>
    const { end } = OutgoingMessage.prototype as unknown as Record<string, Method>
    const writeHead = prototype.writeHead!
    prototype.end = function (this: unknown, ...args: unknown[]) {
      return end!.apply(this, args)
    }
    prototype.writeHead = function (this: unknown, ...args: unknown[]) {
      return writeHead.apply(this, args)
    }
    routes(sub)
    app.use('/sub', sub)
    const added = await request(app).post('/sub/add/a')
    expect([added.status, added.text]).toEqual([200, 'added'])
    expect(store.calls.save).toBe(1)
    const read = await request(app)
      .get('/sub/read')
      .set('Cookie', cookiePair(sessionCookie(added)))
    expect(read.body).toEqual({ a: true })
  })

  // A wrapper installed after session() that answers only its first end() must not swallow the
  // error response: the hook puts back the methods it replaced, so the error handler's end() is
  // Node's again.
  it('answers 503 with no cookie when the save fails, whatever wraps res.end', async () => {
    for (const where of ['before', 'after', 'none']) {
      const app = express()
      if (where === 'before') app.use(wrapsEndOnce)
      app.use(session(new SaveRejectingStore() as Store, { secret: SECRET }))
      if (where === 'after') app.use(wrapsEndOnce)
      routes(app)
      const res = await request(app).post('/add/a').timeout(5000)
      expect([where, res.status, setCookies(res)]).toEqual([where, 503, []])
      expect(res.text).not.toBe('added')
    }
  })

  it.each([
    // The streamed head went out with the new session's cookie before the save failed.
    ['behind a wrapper', 'post', '/add/a', 'added', 0],
    ['after a streamed head', 'get', '/stream', 'first,last', 1],
  ] as const)(
    'sends the app’s response in the drop-in when the save fails %s',
    async (_, method, path, text, cookies) => {
      const app = express()
      app.use(
        dropIn({
          secret: SECRET,
          store: new SaveRejectingStore() as Store,
          resave: false,
          saveUninitialized: false,
        }),
      )
      app.use(wrapsEndOnce)
      const errors: string[] = []
      routes(app)
      app.use(((err, _req, _res, next) => {
        errors.push((err as Error).message)
        next()
      }) as express.ErrorRequestHandler)
      const res = await request(app)[method](path).timeout(5000)
      // As express-session: the response the app built goes out, and the error reaches next().
      expect([res.status, res.text, setCookies(res).length]).toEqual([200, text, cookies])
      expect(errors).toEqual([expect.stringContaining('read-only')])
    },
  )

  // Behind Express, V8 can keep the functions that were a response's properties alive for a
  // while after the response; whatever they still reach goes on being copied by the garbage
  // collector. So once the response has ended, the wrappers reach neither req nor the session.
  const entries = {
    'session()': (store: Store) => session(store, { secret: SECRET }),
    'the drop-in': (store: Store) =>
      dropIn({ secret: SECRET, store, resave: false, saveUninitialized: false }),
  }
  it.each([
    ['session()', 'saving in the tick', () => new MemoryStore()],
    ['session()', 'saving through a promise', () => new CountingStore()],
    ['the drop-in', 'saving in the tick', () => new MemoryStore()],
    ['the drop-in', 'saving through a promise', () => new CountingStore()],
  ] as const)(
    '%s, %s, lets go of the request and its session once the response has ended',
    async (entry, _, makeStore) => {
      setFlagsFromString('--expose-gc')
      const gc = runInNewContext('gc') as () => void
      type Handler = (req: unknown, res: unknown, next: (err?: unknown) => void) => void
      const middleware = entries[entry](makeStore()) as Handler
      const kept: unknown[] = []
      const respond = async (): Promise<Array<WeakRef<object>>> => {
        const req = new IncomingMessage(new Socket())
        Object.assign(req, { method: 'POST', url: '/add', headers: {} })
        const res = new ServerResponse(req)
        await new Promise<void>((resolve, reject) =>
          middleware(req, res, (err) => (err ? reject(err as Error) : resolve())),
        )
        kept.push(res.writeHead, res.end) // as V8 may keep them
        const data = (req as unknown as { session: Data }).session
        data.visits = 1
        res.end('added')
        await new Promise((resolve) => setImmediate(resolve)) // a save through a promise is done
        expect([res.writableEnded, res.getHeader('Set-Cookie')]).toEqual([
          true,
          expect.stringContaining('connect.sid='),
        ])
        return [new WeakRef(req), new WeakRef(data)]
      }
      const refs = await respond()
      await new Promise((resolve) => setImmediate(resolve))
      gc()
      expect(kept).toHaveLength(2)
      expect(refs.map((ref) => ref.deref())).toEqual([undefined, undefined])
    },
  )
})
