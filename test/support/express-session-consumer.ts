/**
 * A TypeScript program written against @types/express-session, as its users write one, with
 * only the module name changed: the API surface of DefinitelyTyped's express-session tests
 * (options, SessionData augmentation, a custom Store subclass, req.session's methods, the
 * Cookie, MemoryStore, named imports, `SessionData['cookie']`, `cookie.signed`,
 * `req.sessionStore`'s get/set/createSession/destroy/regenerate/generate, a Store subclass with
 * touch and length) plus the forms users write that broke before (`session.SessionOptions`,
 * `import type { SessionOptions }`, `session.SessionData`, `session.Store` as a type).
 * The pack test compiles it against the installed tarball.
 */

/** `header` imports express and the drop-in as `session`, in the module system under test. */
export function expressSessionConsumer(header: string): string {
  return `${header}
import type { SessionOptions, SessionData, CookieOptions } from 'concord-session/express-session'
import { MemoryStore, Session, Store } from 'concord-session/express-session'

// As with @types/express-session, with the module name changed as in the import.
declare module 'concord-session/express-session' {
  interface SessionData {
    views: number
    user: { id: string; name: string }
  }
}

const app = express()

app.use(session({ secret: 'keyboard cat', cookie: { secure: 'auto' } }))
app.use(session({
  secret: ['keyboard cat', 'old cat'],
  name: 'connect.sid',
  store: new session.MemoryStore(),
  cookie: { path: '/', httpOnly: true, secure: false, maxAge: undefined, sameSite: true, priority: 'high', partitioned: true, domain: 'example.com' },
  genid: (req: express.Request): string => req.ip ?? '',
  rolling: false,
  resave: true,
  proxy: true,
  saveUninitialized: true,
  unset: 'keep',
}))
app.use(session({ secret: 'k', cookie: { sameSite: 'strict', maxAge: 60_000, expires: new Date() } }))
app.use(session({ secret: 'k', cookie: { secure: true } }))
app.use(session({ secret: 'k', cookie: { sameSite: 'none' } }))
app.use(session({ secret: 'k', cookie: { sameSite: 'lax' } }))
app.use(session({ secret: 'k', cookie: { maxAge: null, signed: true } }))
app.use(session({ secret: 'k', unset: 'destroy', store: new MemoryStore() }))

// SessionData['cookie'] is the cookie as stored; a new cookie has neither expiry nor maxAge.
const emptyCookie: SessionData['cookie'] = { expires: null, originalMaxAge: null }
app.use(session({ secret: 'k', cookie: emptyCookie, unset: 'keep' }))

const options: SessionOptions = { secret: 'keyboard cat', resave: false, saveUninitialized: false }
const viaNamespace: session.SessionOptions = options
const cookieOptions: CookieOptions = { maxAge: 1000, httpOnly: true }
const namespacedCookieOptions: session.CookieOptions = cookieOptions
app.use(session(viaNamespace))

app.use((req, res, next) => {
  if (req.session.views) {
    req.session.views++
    res.setHeader('Content-Type', 'text/html')
    res.write('<p>views: ' + req.session.views + '</p>')
    res.write('<p>expires in: ' + ((req.session.cookie.maxAge ?? 0) / 1000) + 's</p>')
    res.end()
  } else {
    req.session.views = 1
    res.end('welcome to the session demo. refresh!')
  }
  next()
})

app.post('/login', (req, res, next) => {
  const id: string = req.session.id
  const sid: string = req.sessionID
  req.session.regenerate((err: any) => {
    if (err) return next(err)
    req.session.user = { id, name: sid }
    // @ts-expect-error user is typed by the augmentation above
    req.session.user = 'bob'
    req.session.save((err: any) => (err ? next(err) : res.redirect('/')))
  })
})

app.get('/session', (req, res, next) => {
  req.session.reload((err: any) => {
    if (err) return next(err)
    req.session.touch()
    req.session.resetMaxAge()
    req.session.cookie.maxAge = 30 * 24 * 3600 * 1000
    req.session.cookie.expires = new Date(Date.now() + 1000)
    req.session.cookie.httpOnly = true
    req.session.cookie.secure = 'auto'
    req.session.cookie.sameSite = 'lax'
    const original: number | null = req.session.cookie.originalMaxAge
    res.json({ original })
  })
})

app.use((req, res) => {
  const sess = req.session
  if (!!sess.views) res.end(String((sess.cookie.maxAge || 0) / 1000))
  const signed: boolean | undefined = sess.cookie.signed
  sess.cookie.signed = signed
})

// req.sessionStore is the store passed to session(), with express-session's API.
app.use((req, res) => {
  let sess = req.session
  const store = req.sessionStore
  store.get(sess.id, (err, stored) => void [err, stored?.views])
  const user = { id: 'ann', name: 'Ann' }
  store.set(sess.id, { views: 0, user, cookie: sess.cookie }, (err) => void err)
  sess = store.createSession(req, { views: 0, cookie: sess.cookie })
  store.destroy(sess.id, (err) => void err)
  store.regenerate(req, (err) => void err)
  res.end()
  store.generate(req) // typed as in @types/express-session; throws, saying to use regenerate
})

app.get('/logout', (req, res, next) => {
  req.session.destroy((err: any) => (err ? next(err) : res.redirect('/')))
})

// Custom Session Store
class MyStore extends session.Store {
  private sessions: { [sid: string]: string | undefined }

  constructor() {
    super()
    this.sessions = {}
  }

  get = (sid: string, callback: (err: any, session?: session.SessionData | null) => void): void => {
    const text = this.sessions[sid]
    callback(null, text ? (JSON.parse(text) as SessionData) : null)
  }

  set = (sid: string, data: session.SessionData, callback?: (err?: any) => void): void => {
    this.sessions[sid] = JSON.stringify(data)
    if (callback) callback()
  }

  destroy = (sid: string, callback?: (err?: any) => void): void => {
    delete this.sessions[sid]
    if (callback) callback()
  }
}

app.use(session({ secret: 'keyboard cat', store: new MyStore() }))

// A store written against the named export, with touch and length as properties too.
class NamedStore extends Store {
  private sessions: { [sid: string]: string | undefined } = {}

  get = (sid: string, callback: (err: any, session?: SessionData | null) => void): void => {
    const text = this.sessions[sid]
    callback(null, text ? (JSON.parse(text) as SessionData) : null)
  }

  set = (sid: string, data: SessionData, callback?: (err?: any) => void): void => {
    this.sessions[sid] = JSON.stringify(data)
    if (callback) callback()
  }

  touch = (sid: string, data: SessionData, callback?: (err?: any) => void): void => {
    const text = this.sessions[sid]
    const stored: SessionData | null = text ? (JSON.parse(text) as SessionData) : null
    if (stored) {
      stored.cookie = data.cookie
      this.sessions[sid] = JSON.stringify(stored)
    }
    if (callback) callback()
  }

  length = (callback?: (err?: any, length?: number) => void): void => {
    if (callback) callback(null, Object.keys(this.sessions).length)
  }

  destroy = (sid: string, callback?: (err?: any) => void): void => {
    this.sessions[sid] = undefined
    if (callback) callback()
  }
}

app.use(session({ secret: 'keyboard cat', store: new NamedStore() }))
const named: Session | undefined = undefined

const store: session.Store = new MyStore()
store.on('disconnect', () => {})
const memory: session.MemoryStore = new session.MemoryStore()
memory.all((err: any, all: unknown) => void [err, all])
memory.length((err: any, length: number) => void [err, length])
memory.clear()
const cookie: session.Cookie = new session.Cookie({ maxAge: 1000 })
const header: string = cookie.serialize('a', 'b')
declare const stored: session.SessionData
const data: number = stored.views // the augmentation reaches session.SessionData too
const sess: session.Session | undefined = undefined

export { app, store, memory, header, data, sess, named, namespacedCookieOptions }
`
}
