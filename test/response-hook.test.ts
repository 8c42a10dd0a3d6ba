/**
 * How session() hooks the response: through Node's ServerResponse methods when the response
 * uses them, with own-property wrappers when something else replaced them, and never touching
 * a response that has no session.
 */
import { createServer, OutgoingMessage, ServerResponse, type IncomingMessage } from 'node:http'
import express, { type RequestHandler } from 'express'
import request from 'supertest'
import session, { MemoryStore, type Store } from '../entries/index'
import { cookiePair, sessionCookie, setCookies } from './support/http'
import { CountingStore, SaveRejectingStore } from './support/stores'

const SECRET = 'response-hook-test-secret'
type Data = Record<string, unknown>

/** An app whose middleware before session() is `before`; /add stores a key, /read shows them. */
function appWith(store: Store = new MemoryStore(), before?: RequestHandler) {
  const app = express()
  if (before) app.use(before)
  app.use(session(store, { secret: SECRET }))
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

/** A compression-style middleware: replaces res.write and res.end with its own, which call through. */
const wrapsEnd: RequestHandler = (_req, res, next) => {
  const end = res.end
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    if (!res.headersSent) res.setHeader('X-Wrapped-End', 'yes')
    return (end as (...a: unknown[]) => ServerResponse).apply(this, args)
  } as typeof res.end
  next()
}

/** An on-headers-style middleware: replaces res.writeHead with one that calls through. */
const wrapsWriteHead: RequestHandler = (_req, res, next) => {
  const writeHead = res.writeHead
  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    this.setHeader('X-Wrapped-Head', 'yes')
    return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args)
  } as typeof res.writeHead
  next()
}

describe('the response hook', () => {
  it('adds no own property to a response whose end and writeHead are Node’s', async () => {
    let own: string[] = []
    const app = appWith()
    app.get('/own', (req, res) => {
      ;(req.session as unknown as Data).x = 1
      own = ['end', 'writeHead'].filter((name) => Object.hasOwn(res, name))
      res.end('ok')
    })
    const res = await request(app).get('/own')
    expect(res.status).toBe(200)
    expect(own).toEqual([])
    expect(sessionCookie(res)).toBeDefined()
  })

  it.each([
    ['res.end', wrapsEnd, 'x-wrapped-end'],
    ['res.writeHead', wrapsWriteHead, 'x-wrapped-head'],
  ])(
    'still saves and sets the cookie when a middleware before it replaced %s',
    async (_name, before, header) => {
      const app = appWith(new MemoryStore(), before)
      const first = await request(app).post('/add/a')
      expect([first.status, first.text, first.headers[header]]).toEqual([200, 'added', 'yes'])
      const cookie = cookiePair(sessionCookie(first))
      const streamed = await request(app).get('/stream').set('Cookie', cookie)
      expect(streamed.text).toBe('first,last')
      expect((await request(app).get('/read').set('Cookie', cookie)).body).toEqual({
        a: true,
        streamed: true,
      })
    },
  )

  it('saves once when an app’s response prototype has an end of its own', async () => {
    const store = new CountingStore()
    const app = express()
    // Straight to the base class's end, as code that captured it before session() ran would.
    const nodeEnd = OutgoingMessage.prototype.end
    const ends: string[] = []
    ;(app.response as { end: unknown }).end = function (this: ServerResponse, ...args: unknown[]) {
      ends.push('app.response.end')
      return (nodeEnd as (...a: unknown[]) => ServerResponse).apply(this, args)
    }
    app.use(session(store, { secret: SECRET }))
    app.post('/add', (req, res) => {
      ;(req.session as unknown as Data).added = 1
      res.end('done')
    })
    const res = await request(app).post('/add')
    expect([res.status, res.text]).toEqual([200, 'done'])
    expect(sessionCookie(res)).toBeDefined()
    expect(store.calls.save).toBe(1)
    expect(ends).toEqual(['app.response.end'])
  })

  it('answers 503 with no cookie when the save fails, on either path', async () => {
    for (const before of [undefined, wrapsEnd]) {
      const app = appWith(new SaveRejectingStore(), before)
      const res = await request(app).post('/add/a')
      expect(res.status).toBe(503)
      expect(res.text).not.toBe('added')
      expect(setCookies(res)).toEqual([])
    }
  })

  it('leaves a response without a session as Node sends it', async () => {
    // The hook is installed once session() has handled a request in this process.
    await request(appWith()).post('/add/a')
    const server = createServer((_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(201, { 'Content-Type': 'text/plain' })
      res.end('plain')
    })
    const res = await request(server).get('/')
    expect([res.status, res.text, setCookies(res)]).toEqual([201, 'plain', []])
  })
})
