/**
 * The drop-in behaves as express-session 1.19 where apps and its own test suite can tell:
 * its Cookie, `cookie` among the session's keys, the store's own errors, a disconnected store,
 * stores that answer synchronously, ids outside concord's alphabet, headers after `res.end()`,
 * and the cookie attributes it sends without checking them.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { randomBytes } from 'node:crypto'
import request from 'supertest'
import session, { Cookie, MemoryStore } from '../../entries/express-session.js'
import { SyncCallbackStore } from './support/fakes.js'

type Req = IncomingMessage & {
  session?: Record<string, any> & { cookie: Cookie }
  sessionID?: string
}
type Handler = (req: Req, res: ServerResponse) => void

/** express-session's own harness: an error before the head goes out is a 500 with its message; after it, a server 'error'. */
function serve(options: Record<string, unknown>, handler: Handler = (_req, res) => res.end()) {
  const middleware = session({ secret: 'keyboard cat', ...options })
  const errors: unknown[] = []
  const server = createServer((req, res) => {
    middleware(req, res, (err?: unknown) => {
      if (err && !res.headersSent) {
        res.statusCode = 500
        res.end((err as Error).message)
      } else if (err) errors.push(err)
      else handler(req as Req, res)
    })
  })
  return { server, errors }
}

const cookiePair = (res: request.Response) =>
  ([] as string[]).concat(res.headers['set-cookie'] ?? [])[0]?.split(';')[0]
const setCookie = (res: request.Response) =>
  ([] as string[]).concat(res.headers['set-cookie'] ?? [])[0]

/** An express-session store whose get() throws for an unknown id, as express-session's test SyncStore does. */
class ParsingSyncStore extends SyncCallbackStore {
  override get(sid: string, callback: (err?: unknown, value?: unknown) => void): void {
    callback(null, JSON.parse(this.sessions.get(sid) as string))
  }
}

describe("the drop-in's Cookie is express-session's", () => {
  it("new Cookie() has express-session's defaults; options apply in order through the setters", () => {
    const cookie = new Cookie()
    expect([cookie.expires, cookie.maxAge, cookie.httpOnly, cookie.path]).toEqual([
      null,
      null,
      true,
      '/',
    ])
    const expires = new Date(Date.now() + 60_000)
    expect(new Cookie({ expires }).expires).toBe(expires)
    expect(new Cookie({ maxAge: expires }).expires!.getTime()).toBe(expires.getTime())
    expect(new Cookie({ maxAge: 5000, expires: null }).maxAge).toBeNull()
    expect(
      new Cookie({ partitioned: true, priority: 'high', data: { path: '/x' } }).data,
    ).toMatchObject({ partitioned: true, priority: 'high', path: '/' })
  })

  it('rejects what express-session rejects, with its messages', () => {
    for (const bad of [42, 'foo', true, () => {}])
      expect(() => new Cookie(bad as never)).toThrow('argument options must be a object')
    for (const bad of ['42', true, () => {}])
      expect(() => new Cookie({ maxAge: bad })).toThrow(/maxAge/)
  })

  it('serializes a Set-Cookie value, and req.session.cookie is one too', async () => {
    expect(new Cookie({ path: '/app' }).serialize('theme', 'dark')).toBe(
      'theme=dark; Path=/app; HttpOnly',
    )
    const { server } = serve({}, (req, res) => {
      res.setHeader('Set-Cookie', req.session!.cookie.serialize('previous', 'v'))
      res.end(String(req.session!.cookie instanceof Cookie))
    })
    const res = await request(server).get('/')
    expect(res.text).toBe('true')
    expect(
      ([] as string[]).concat(res.headers['set-cookie'] ?? []).map((c) => c.split('=')[0]),
    ).toEqual(['previous', 'connect.sid'])
  })
})

describe('req.session under the drop-in', () => {
  it('lists cookie among its keys, as express-session, and never stores it as data', async () => {
    const store = new SyncCallbackStore()
    const { server } = serve({ store }, (req, res) => {
      req.session!.n = (req.session!.n ?? 0) + 1
      const forIn: string[] = []
      for (const key in req.session) forIn.push(key)
      res.end(
        JSON.stringify({
          keys: Object.keys(req.session!).sort(),
          forIn: forIn.sort(),
          n: req.session!.n,
        }),
      )
    })
    const first = await request(server).get('/')
    expect(JSON.parse(first.text)).toEqual({ keys: ['cookie', 'n'], forIn: ['cookie', 'n'], n: 1 })
    const second = await request(server).get('/').set('Cookie', cookiePair(first)!)
    expect(JSON.parse(second.text).n).toBe(2)
    const [blob] = [...store.sessions.values()].map((text) => JSON.parse(text))
    expect(Object.keys(blob).sort()).toEqual(['__concord', 'cookie', 'n'])
    expect(blob.__concord.reservedKeys).toBeUndefined()
  })

  it('save() during the request leaves nothing to save at its end (resave is on by default)', async () => {
    const store = new SyncCallbackStore()
    const { server } = serve({ store }, (req, res) => {
      req.session!.hit = true
      req.session!.save((err?: Error) => res.end(err ? err.message : 'saved'))
    })
    const res = await request(server).get('/')
    expect(res.text).toBe('saved')
    expect(store.calls.filter((c) => c.startsWith('set'))).toHaveLength(1)
  })

  it('reload() of a session the store no longer has fails with "failed to load session"', async () => {
    const store = new SyncCallbackStore()
    const { server } = serve({ store }, (req, res) => {
      if (req.url === '/') return res.end('created')
      store.sessions.clear()
      req.session!.reload((err?: Error) => res.end(err ? err.message : 'reloaded'))
    })
    const created = await request(server).get('/')
    expect((await request(server).get('/again').set('Cookie', cookiePair(created)!)).text).toBe(
      'failed to load session',
    )
  })

  it("takes an id from genid outside concord's alphabet, URL-encoded in the cookie, and reads it back", async () => {
    const { server } = serve({ genid: () => '%/ ü' }, (req, res) => {
      req.session!.n = (req.session!.n ?? 0) + 1
      res.end(`${req.sessionID} ${req.session!.n}`)
    })
    const first = await request(server).get('/')
    expect(first.text).toBe('%/ ü 1')
    expect(cookiePair(first)).toMatch(/^connect\.sid=s%3A%25%2F%20%C3%BC\.[\w%]+$/)
    expect((await request(server).get('/').set('Cookie', cookiePair(first)!)).text).toBe('%/ ü 2')
  })

  it('signs with a Buffer secret', async () => {
    const { server } = serve({ secret: randomBytes(32) }, (req, res) => {
      req.session!.n = (req.session!.n ?? 0) + 1
      res.end(String(req.session!.n))
    })
    const first = await request(server).get('/')
    expect((await request(server).get('/').set('Cookie', cookiePair(first)!)).text).toBe('2')
  })
})

describe('stores under the drop-in', () => {
  it("passes the store's own load error to next(err)", async () => {
    const store = new SyncCallbackStore()
    const { server } = serve({ store })
    const created = await request(server).get('/')
    store.get = (_sid, callback) => callback(new Error('boom!'))
    const res = await request(server).get('/').set('Cookie', cookiePair(created)!)
    expect([res.status, res.text]).toEqual([500, 'boom!'])
  })

  it("sends the app's response when the save at the end fails, then passes the store's own error on", async () => {
    const store = new SyncCallbackStore()
    store.set = (_sid, _sess, callback) => callback?.(new Error('disk full'))
    const { server, errors } = serve({ store }, (req, res) => {
      req.session!.x = 1
      res.end('session saved')
    })
    const res = await request(server).get('/')
    expect([res.status, res.text, setCookie(res)]).toEqual([200, 'session saved', undefined])
    await new Promise((resolve) => setImmediate(resolve))
    expect(errors).toEqual([expect.objectContaining({ message: 'disk full' })])
  })

  it('serves requests without a session while the store says it is disconnected', async () => {
    const store = new MemoryStore()
    const { server } = serve({ store }, (req, res) => res.end(typeof req.session))
    store.emit('disconnect')
    const down = await request(server).get('/')
    expect([down.text, setCookie(down)]).toEqual(['undefined', undefined])
    store.emit('connect')
    expect((await request(server).get('/')).text).toBe('object')
    store.close()
  })

  it('works with a store that answers synchronously and whose get() throws for an unknown id', async () => {
    const store = new ParsingSyncStore()
    const { server } = serve({ store, unset: 'destroy' }, (req, res) => {
      const count = (req.session!.count = (req.session!.count ?? 0) + 1)
      if (count > 1) (req as { session?: unknown }).session = null
      res.end(`hits: ${count}`)
    })
    const first = await request(server).get('/')
    expect([first.status, first.text]).toEqual([200, 'hits: 1'])
    const second = await request(server).get('/').set('Cookie', cookiePair(first)!)
    expect([second.status, second.text]).toEqual([200, 'hits: 2'])
    expect(store.sessions.size).toBe(0)
  })
})

describe('responses under the drop-in', () => {
  it('headers are final after res.end(), as in plain Node, while the save runs; the session cookie still goes out', async () => {
    let thrown: { code?: string; message?: string } | undefined
    const { server } = serve({}, (req, res) => {
      req.session!.x = 1
      res.end('done')
      try {
        res.setHeader('Content-Length', '3')
      } catch (err) {
        thrown = err as typeof thrown
      }
    })
    const res = await request(server).get('/')
    expect([res.status, res.text]).toEqual([200, 'done'])
    expect(thrown).toMatchObject({
      code: 'ERR_HTTP_HEADERS_SENT',
      message: 'Cannot set headers after they are sent to the client',
    })
    expect(cookiePair(res)).toMatch(/^connect\.sid=/)
  })

  it('saves nothing and sends no cookie when the app put a non-string in req.sessionID, as express-session', async () => {
    const store = new SyncCallbackStore()
    const { server } = serve({ store }, (req, res) => {
      ;(req as { sessionID?: unknown }).sessionID = () => {}
      req.session!.x = 1
      res.end('ok')
    })
    const res = await request(server).get('/')
    expect([res.status, res.text, setCookie(res)]).toEqual([200, 'ok', undefined])
    expect(store.sessions.size).toBe(0)
    const normal = await request(
      serve({ store }, (req, res) => {
        req.session!.x = 1
        res.end('ok')
      }).server,
    ).get('/')
    expect(cookiePair(normal)).toMatch(/^connect\.sid=/)
    expect(store.sessions.size).toBe(1)
  })

  it("sends the cookie attributes express-session sends without checking them: Partitioned, and sameSite 'auto' without Secure", async () => {
    const partitioned = setCookie(
      await request(serve({ cookie: { partitioned: true } }).server).get('/'),
    )!
    expect(partitioned).toMatch(/; Partitioned/)
    expect(partitioned).not.toMatch(/Secure/)
    const auto = serve({ proxy: true, cookie: { sameSite: 'auto' } }).server
    expect(setCookie(await request(auto).get('/').set('X-Forwarded-Proto', 'https'))).toMatch(
      /; SameSite=None$/,
    )
    expect(setCookie(await request(auto).get('/'))).toMatch(/; SameSite=Lax$/)
  })

  it('an invalid cookie date is a TypeError at setup', () => {
    expect(() => session({ secret: 's', cookie: { expires: new Date(NaN) } })).toThrow(
      'cookie.expires is an invalid Date',
    )
    expect(() => session({ secret: 's', cookie: { maxAge: new Date(NaN) } })).toThrow(
      'cookie.maxAge is an invalid Date',
    )
  })
})
