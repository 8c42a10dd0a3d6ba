/**
 * The drop-in beside real express-session 1.19: the same app code, the same options, the same
 * store class (express-session's own MemoryStore), the same script of requests, under
 * Express 5 and Express 4. What a browser sees must match, except for the differences
 * the README's "Switching from express-session" lists, which are asserted here one by one.
 */
import express, { type Express, type Request } from 'express'
import dropIn from '../../entries/express-session.js'
import { cookieParser, express4, expressSession } from './support/modules.js'
import { runTrace, type Seen, type Step, type TraceOptions } from './support/trace.js'

const SECRET = 'side-by-side-secret'
const WEEK = 7 * 86_400_000

/** express-session's MemoryStore, counting the writes and touches the middleware makes. */
class CountingStore extends (expressSession.MemoryStore as unknown as new () => {
  set(sid: string, sess: unknown, cb?: () => void): void
  touch(sid: string, sess: unknown, cb?: () => void): void
  sessions: Record<string, string>
}) {
  sets = 0
  touches = 0
  override set(sid: string, sess: unknown, cb?: () => void): void {
    this.sets++
    super.set(sid, sess, cb)
  }
  override touch(sid: string, sess: unknown, cb?: () => void): void {
    this.touches++
    super.touch(sid, sess, cb)
  }
}

type SessionFactory = (options: Record<string, unknown>) => unknown
type Sess = Record<string, any>

interface Scenario {
  /** express-session options; `store` is added per implementation unless `ownStore` says not to. */
  options: Record<string, unknown>
  steps: Step[]
  trace?: TraceOptions
  /** Apps built from these option overrides, in order (for secret rotation). Default: one app. */
  apps?: Array<Record<string, unknown>>
  ownStore?: boolean
  before?: (app: Express) => void
}

interface Run {
  seen: Seen[]
  store: CountingStore
}

const frameworks: Array<[string, () => Express]> = [
  ['Express 5', () => express()],
  ['Express 4', express4],
]

function mountRoutes(app: Express): void {
  const s = (req: Request) => req.session as unknown as Sess
  app.get('/views', (req, res) => {
    s(req).views = (s(req).views ?? 0) + 1
    res.json({ views: s(req).views, id: req.sessionID })
  })
  app.get('/peek', (req, res) =>
    res.json({
      views: req.session ? (s(req).views ?? null) : 'no session',
      id: req.sessionID ?? null,
    }),
  )
  app.post('/login', (req, res, next) => {
    s(req).regenerate((err?: Error) => {
      if (err) return next(err)
      s(req).user = 'ann'
      res.json({ id: req.sessionID })
    })
  })
  app.get('/me', (req, res) =>
    res.json({ user: s(req).user ?? null, views: s(req).views ?? null, id: req.sessionID }),
  )
  app.post('/logout', (req, res, next) => {
    s(req).destroy((err?: Error) =>
      err ? next(err) : res.json({ gone: req.session === undefined }),
    )
  })
  app.post('/unset', (req, res) => {
    ;(req as { session: unknown }).session = null
    res.json({ unset: true })
  })
  app.post('/remember', (req, res) => {
    s(req).cookie.maxAge = WEEK
    s(req).remember = true
    res.json({ ok: true })
  })
  app.post('/remember-only', (req, res) => {
    s(req).cookie.maxAge = WEEK // a cookie change and nothing else
    res.json({ ok: true })
  })
  app.post('/browser-session', (req, res) => {
    s(req).cookie.expires = false // express-session's documented way to drop the expiry
    s(req).views = (s(req).views ?? 0) + 1
    res.json({ ok: true })
  })
  app.post('/save', (req, res, next) => {
    s(req).saved = 'early'
    s(req).save((err?: Error) => (err ? next(err) : res.json({ saved: true })))
  })
  app.post('/reload', (req, res, next) => {
    s(req).views = 999 // not saved: reload must bring back the stored value
    s(req).reload((err?: Error) => (err ? next(err) : res.json({ views: s(req).views })))
  })
}

async function run(
  framework: () => Express,
  factory: SessionFactory,
  scenario: Scenario,
): Promise<Run> {
  const store = new CountingStore()
  const apps = (scenario.apps ?? [{}]).map((overrides) => {
    const app = framework()
    scenario.before?.(app)
    const options = { ...scenario.options, ...overrides }
    app.use(factory(scenario.ownStore ? options : { ...options, store }) as never)
    mountRoutes(app)
    return app
  })
  return { seen: await runTrace(apps as never, scenario.steps, scenario.trace), store }
}

const base = { secret: SECRET, resave: false, saveUninitialized: false }

describe.each(frameworks)('drop-in beside express-session under %s', (_name, framework) => {
  async function both(scenario: Scenario): Promise<{ theirs: Run; ours: Run }> {
    const theirs = await run(framework, expressSession as unknown as SessionFactory, scenario)
    const ours = await run(framework, dropIn as unknown as SessionFactory, scenario)
    return { theirs, ours }
  }

  async function expectSame(scenario: Scenario): Promise<{ theirs: Run; ours: Run }> {
    const result = await both(scenario)
    expect(result.ours.seen).toEqual(result.theirs.seen)
    return result
  }

  it('the view counter', async () => {
    const { ours } = await expectSame({
      options: base,
      steps: [{ path: '/views' }, { path: '/views' }, { path: '/views' }],
    })
    expect(ours.seen.map((s) => s.body)).toEqual([
      { views: 1, id: '#1' },
      { views: 2, id: '#1' },
      { views: 3, id: '#1' },
    ])
    expect(ours.seen.map((s) => s.cookies.length)).toEqual([1, 0, 0]) // a browser-session cookie is sent once
  })

  it("the view counter with express-session's defaults (resave and saveUninitialized left unset)", async () => {
    const { ours } = await expectSame({
      options: { secret: SECRET },
      steps: [{ path: '/peek' }, { path: '/views' }, { path: '/peek' }],
    })
    expect(ours.seen[0]!.cookies).toHaveLength(1) // saveUninitialized: true saves and sends an empty session
    expect(ours.seen[2]!.body).toEqual({ views: 1, id: '#1' })
  })

  it('the default store when none is given', async () => {
    await expectSame({
      options: base,
      ownStore: true,
      steps: [{ path: '/views' }, { path: '/views' }, { path: '/me' }],
    })
  })

  it('a maxAge cookie is re-sent whenever the session changes', async () => {
    const { ours } = await expectSame({
      options: { ...base, cookie: { maxAge: 60_000 } },
      steps: [{ path: '/views' }, { path: '/peek' }, { path: '/views' }],
    })
    expect(ours.seen.map((s) => s.cookies.length)).toEqual([1, 0, 1])
    expect(ours.seen[0]!.cookies[0]!.attributes).toEqual({
      path: '/',
      expires: 'future',
      httponly: true,
    })
  })

  it('login with regenerate: a new id, the old one forgotten', async () => {
    const { ours } = await expectSame({
      options: base,
      steps: [
        { path: '/views' },
        { method: 'post', path: '/login' },
        { path: '/me' },
        { path: '/me', cookieFrom: 0 },
      ],
    })
    expect(ours.seen.map((s) => s.body)).toEqual([
      { views: 1, id: '#1' },
      { id: '#2' },
      { user: 'ann', views: null, id: '#2' },
      { user: null, views: null, id: '#3' }, // the pre-login id is dead: a fresh session
    ])
  })

  it('logout with destroy: the session is gone (concord also clears the cookie; express-session leaves it)', async () => {
    const { theirs, ours } = await both({
      options: base,
      steps: [{ path: '/views' }, { method: 'post', path: '/logout' }, { path: '/views' }],
    })
    expect(ours.seen.map((s) => s.body)).toEqual(theirs.seen.map((s) => s.body))
    expect(ours.seen[1]!.body).toEqual({ gone: true })
    expect(ours.seen[2]!.body).toEqual({ views: 1, id: '#2' })
    expect(theirs.seen[1]!.cookies).toEqual([])
    expect(ours.seen[1]!.cookies).toEqual([
      {
        name: 'connect.sid',
        value: 'cleared',
        attributes: { path: '/', expires: 'past', httponly: true },
      },
    ])
    expect(Object.keys(ours.store.sessions)).toHaveLength(Object.keys(theirs.store.sessions).length)
  })

  it('rolling: the cookie is re-sent on every response', async () => {
    const steps: Step[] = [{ path: '/views' }, { path: '/peek' }, { path: '/peek' }]
    const rolling = await expectSame({
      options: { ...base, rolling: true, cookie: { maxAge: 60_000 } },
      steps,
    })
    expect(rolling.ours.seen.map((s) => s.cookies.length)).toEqual([1, 1, 1])
    const still = await expectSame({
      options: { ...base, rolling: false, cookie: { maxAge: 60_000 } },
      steps,
    })
    expect(still.ours.seen.map((s) => s.cookies.length)).toEqual([1, 0, 0])
  })

  it('resave: an unchanged session is written back on every request only with resave: true', async () => {
    const steps: Step[] = [{ path: '/views' }, { path: '/peek' }, { path: '/peek' }]
    const resave = await expectSame({ options: { ...base, resave: true }, steps })
    expect([resave.ours.store.sets, resave.theirs.store.sets]).toEqual([3, 3])
    const no = await expectSame({ options: { ...base, resave: false }, steps })
    expect([no.ours.store.sets, no.theirs.store.sets]).toEqual([1, 1])
    // Both keep the idle timer going through the store's touch() on the reads.
    expect([no.ours.store.touches, no.theirs.store.touches]).toEqual([2, 2])
  })

  it('saveUninitialized: an untouched new session is stored and gets a cookie only when true', async () => {
    const no = await expectSame({
      options: { ...base, saveUninitialized: false },
      steps: [{ path: '/peek' }],
    })
    expect(no.ours.seen[0]!.cookies).toEqual([])
    expect([
      Object.keys(no.ours.store.sessions).length,
      Object.keys(no.theirs.store.sessions).length,
    ]).toEqual([0, 0])
    const yes = await expectSame({
      options: { ...base, saveUninitialized: true },
      steps: [{ path: '/peek' }],
    })
    expect(yes.ours.seen[0]!.cookies).toHaveLength(1)
    expect([
      Object.keys(yes.ours.store.sessions).length,
      Object.keys(yes.theirs.store.sessions).length,
    ]).toEqual([1, 1])
  })

  it("unset: 'destroy' removes the session from the store (concord also clears the cookie)", async () => {
    const steps: Step[] = [
      { path: '/views' },
      { method: 'post', path: '/unset' },
      { path: '/peek' },
    ]
    const { theirs, ours } = await both({ options: { ...base, unset: 'destroy' }, steps })
    expect(ours.seen.map((s) => s.body)).toEqual(theirs.seen.map((s) => s.body))
    expect(ours.seen[2]!.body).toEqual({ views: null, id: '#2' })
    expect([
      Object.keys(ours.store.sessions).length,
      Object.keys(theirs.store.sessions).length,
    ]).toEqual([0, 0])
    expect(theirs.seen[1]!.cookies).toEqual([])
    expect(ours.seen[1]!.cookies[0]!.value).toBe('cleared')
  })

  it("unset: 'keep' (the default) leaves the stored session as it was", async () => {
    const { ours } = await expectSame({
      options: base,
      steps: [{ path: '/views' }, { method: 'post', path: '/unset' }, { path: '/views' }],
    })
    expect(ours.seen[2]!.body).toEqual({ views: 2, id: '#1' })
  })

  it('proxy: X-Forwarded-Proto decides a Secure cookie only when proxy is true (or Express trusts the proxy)', async () => {
    const https = { 'X-Forwarded-Proto': 'https' }
    const trusted = await expectSame({
      options: { ...base, proxy: true, cookie: { secure: true } },
      steps: [
        { path: '/views', cookieFrom: 'none' },
        { path: '/views', headers: https, cookieFrom: 'none' },
      ],
    })
    expect(trusted.ours.seen[0]!.cookies).toEqual([]) // Secure over plain HTTP: withheld
    expect(trusted.ours.seen[1]!.cookies[0]!.attributes.secure).toBe(true)
    const distrusted = await expectSame({
      options: { ...base, proxy: false, cookie: { secure: true } },
      steps: [{ path: '/views', headers: https }],
    })
    expect(distrusted.ours.seen[0]!.cookies).toEqual([])
    const express = await expectSame({
      options: { ...base, cookie: { secure: true } },
      before: (app) => app.set('trust proxy', 1),
      steps: [{ path: '/views', headers: https }],
    })
    expect(express.ours.seen[0]!.cookies).toHaveLength(1)
  })

  it("cookie.secure: 'auto' sets Secure only over HTTPS", async () => {
    const { ours } = await expectSame({
      options: { ...base, proxy: true, cookie: { secure: 'auto' } },
      steps: [
        { path: '/views', cookieFrom: 'none' },
        { path: '/views', headers: { 'X-Forwarded-Proto': 'https' }, cookieFrom: 'none' },
      ],
    })
    expect(ours.seen[0]!.cookies[0]!.attributes.secure).toBeUndefined()
    expect(ours.seen[1]!.cookies[0]!.attributes.secure).toBe(true)
  })

  it("cookie.sameSite: 'auto' is None over HTTPS and Lax over HTTP", async () => {
    const { ours } = await expectSame({
      options: { ...base, proxy: true, cookie: { sameSite: 'auto', secure: 'auto' } },
      steps: [
        { path: '/views', cookieFrom: 'none' },
        { path: '/views', headers: { 'X-Forwarded-Proto': 'https' }, cookieFrom: 'none' },
      ],
    })
    expect(ours.seen.map((s) => s.cookies[0]!.attributes.samesite)).toEqual(['lax', 'none'])
  })

  it("genid: the ids are the app's", async () => {
    let ourCount = 0
    let theirCount = 0
    const theirs = await run(framework, expressSession as unknown as SessionFactory, {
      options: { ...base, genid: () => `custom-${++theirCount}` },
      steps: [{ path: '/views' }, { method: 'post', path: '/login' }],
      trace: { rawIds: true },
    })
    const ours = await run(framework, dropIn as unknown as SessionFactory, {
      options: { ...base, genid: () => `custom-${++ourCount}` },
      steps: [{ path: '/views' }, { method: 'post', path: '/login' }],
      trace: { rawIds: true },
    })
    expect(ours.seen).toEqual(theirs.seen)
    expect(ours.seen.map((s) => s.cookies[0]!.value)).toEqual(['custom-1', 'custom-2'])
  })

  it("cookie-parser's req.secret signs and verifies when no secret option is given", async () => {
    const { ours } = await expectSame({
      options: { resave: false, saveUninitialized: false },
      before: (app) => app.use(cookieParser('parser-secret')),
      steps: [{ path: '/views' }, { path: '/views' }],
    })
    expect(ours.seen[1]!.body).toEqual({ views: 2, id: '#1' })
  })

  it('a secret array: a cookie signed with an older secret still opens the session (concord re-signs it with the first)', async () => {
    const scenario: Scenario = {
      options: base,
      apps: [{ secret: ['old'] }, { secret: ['new', 'old'] }, { secret: ['new'] }],
      steps: [
        { path: '/views', app: 0 },
        { path: '/views', app: 1 },
        { path: '/views', app: 2 },
      ],
    }
    const { theirs, ours } = await both(scenario)
    expect(ours.seen.map((s) => s.body)).toEqual(
      theirs.seen
        .map((s) => s.body)
        .slice(0, 2)
        .concat([ours.seen[2]!.body]),
    )
    expect(ours.seen[1]!.body).toEqual({ views: 2, id: '#1' })
    expect(theirs.seen[1]!.cookies).toEqual([]) // express-session keeps the old signature in the browser...
    expect(ours.seen[1]!.cookies).toEqual([
      { name: 'connect.sid', value: '#1', attributes: { path: '/', httponly: true } },
    ])
    // ...so once "old" is retired its users lose their session; concord's users keep it.
    expect(theirs.seen[2]!.body).toEqual({ views: 1, id: '#2' })
    expect(ours.seen[2]!.body).toEqual({ views: 3, id: '#1' })
  })

  it('cookie.expires: every new cookie expires at that date', async () => {
    const expires = new Date(Date.now() + 3_600_000)
    const { ours, theirs } = await both({
      options: { ...base, cookie: { expires } },
      steps: [{ path: '/views' }],
      trace: { exactExpires: true },
    })
    expect(ours.seen[0]!.cookies[0]!.attributes.expires).toBe(expires.toUTCString())
    // express-session turns the date into a maxAge when the session is made and back into a date
    // when it sends the cookie, so its Expires can land one second later; all else is the same.
    const theirsAt = Date.parse(String(theirs.seen[0]!.cookies[0]!.attributes.expires))
    expect(theirsAt - Math.floor(expires.getTime() / 1000) * 1000).toBeGreaterThanOrEqual(0)
    expect(theirsAt - Math.floor(expires.getTime() / 1000) * 1000).toBeLessThanOrEqual(1000)
    const withoutExpires = (run: Run) =>
      run.seen.map((seen) => ({
        ...seen,
        cookies: seen.cookies.map((c) => ({
          ...c,
          attributes: { ...c.attributes, expires: 'checked above' },
        })),
      }))
    expect(withoutExpires(ours)).toEqual(withoutExpires(theirs))
  })

  it('cookie.path: a request outside the path gets no session', async () => {
    const { ours } = await expectSame({
      options: { ...base, cookie: { path: '/views' } },
      steps: [{ path: '/views' }, { path: '/peek' }],
    })
    expect(ours.seen[1]!.body).toEqual({ views: 'no session', id: null })
    expect(ours.seen[0]!.cookies[0]!.attributes.path).toBe('/views')
  })

  it('name and the other cookie attributes', async () => {
    await expectSame({
      options: {
        ...base,
        name: 'sid',
        cookie: {
          maxAge: 60_000,
          domain: 'example.com',
          sameSite: 'strict',
          httpOnly: false,
          priority: 'high',
          partitioned: true,
          secure: true,
        },
      },
      before: (app) => app.set('trust proxy', 1),
      steps: [{ path: '/views', headers: { 'X-Forwarded-Proto': 'https' } }],
    })
  })

  it('save and reload with callbacks', async () => {
    const { ours } = await expectSame({
      options: base,
      steps: [
        { path: '/views' },
        { method: 'post', path: '/save' },
        { path: '/me' },
        { method: 'post', path: '/reload' },
      ],
    })
    expect(ours.seen[3]!.body).toEqual({ views: 1 })
  })

  it('"remember me": a per-session maxAge set with a data change is sent and kept', async () => {
    const { ours } = await expectSame({
      options: base,
      steps: [{ path: '/views' }, { method: 'post', path: '/remember' }, { path: '/views' }],
    })
    expect(ours.seen[1]!.cookies[0]!.attributes.expires).toBe('future')
    expect(ours.seen[2]!.cookies[0]!.attributes.expires).toBe('future') // the session's own maxAge, not the default
  })

  it('cookie.expires = false: the cookie becomes a browser-session one in the browser too', async () => {
    const { theirs, ours } = await both({
      options: { ...base, cookie: { maxAge: 60_000 } },
      steps: [{ path: '/views' }, { method: 'post', path: '/browser-session' }, { path: '/views' }],
    })
    expect(ours.seen.slice(0, 2)).toEqual(theirs.seen.slice(0, 2))
    expect(ours.seen[1]!.cookies).toEqual([
      { name: 'connect.sid', value: '#1', attributes: { path: '/', httponly: true } },
    ])
    expect(ours.seen[2]!.body).toEqual({ views: 3, id: '#1' })
    // express-session re-sends the (already expiry-less) cookie on every later change; concord had nothing new to say.
    expect(theirs.seen[2]!.cookies).toHaveLength(1)
    expect(ours.seen[2]!.cookies).toEqual([])
  })

  it('a change to the cookie alone is saved by both, and concord also sends it at once', async () => {
    const { theirs, ours } = await both({
      options: base,
      steps: [
        { path: '/views' },
        { method: 'post', path: '/remember-only' },
        { path: '/peek' },
        { path: '/views' },
      ],
    })
    expect(ours.seen.map((s) => s.body)).toEqual(theirs.seen.map((s) => s.body))
    // express-session persists it through touch() and tells the browser only with the next data change.
    expect(theirs.seen[1]!.cookies).toEqual([])
    expect(ours.seen[1]!.cookies[0]!.attributes.expires).toBe('future')
    expect(ours.seen[3]).toEqual(theirs.seen[3])
  })
})
