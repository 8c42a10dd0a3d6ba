import type { IncomingMessage } from 'node:http'
import { translateCookie, translateOptions } from '../../lib/compat/options.js'
import session from '../../entries/express-session.js'
import { MemoryStore } from '../../entries/index.js'

function request(
  headers: Record<string, string> = {},
  extra: Record<string, unknown> = {},
): IncomingMessage {
  return { headers, socket: {}, ...extra } as unknown as IncomingMessage
}

describe("translateOptions: express-session options into the core's", () => {
  it('keeps the defaults for what is not given, as express-session does', () => {
    expect(translateOptions(undefined)).toEqual({
      options: { cookie: {} },
      staticCookie: { path: '/', httpOnly: true, secure: false, maxAge: null },
    })
  })

  it('reads resave, saveUninitialized and rolling as truthy or falsy', () => {
    const { options } = translateOptions({
      resave: 0 as never,
      saveUninitialized: 'yes' as never,
      rolling: 1 as never,
    })
    expect(options).toMatchObject({ resave: false, saveUninitialized: true, rolling: true })
  })

  it('takes name, or the old key option, and a falsy secret as "use req.secret"', () => {
    expect(translateOptions({ key: 'sid' }).options.name).toBe('sid')
    expect(translateOptions({ name: 'a', key: 'b' }).options.name).toBe('a')
    expect(translateOptions({ secret: '' }).options.secret).toBeUndefined()
    expect(translateOptions({ secret: ['new', 'old'] }).options.secret).toEqual(['new', 'old'])
  })

  it('throws where express-session throws', () => {
    expect(() => translateOptions({ secret: [] })).toThrow(
      'secret option array must contain one or more strings',
    )
    expect(() => translateOptions({ unset: 'forget' as never })).toThrow(
      'unset option must be "destroy" or "keep"',
    )
    expect(() => translateOptions({ cookie: { maxAge: '1h' as never } })).toThrow(
      'maxAge must be a number or Date',
    )
  })

  it("passes concord's own options through: absoluteTimeout, idleTimeout, maxSize and saveTimeout", () => {
    const extras = {
      absoluteTimeout: 3_600_000,
      idleTimeout: 600_000,
      maxSize: 4096,
      saveTimeout: 500,
    }
    expect(translateOptions(extras).options).toMatchObject(extras)
    expect(() => session({ secret: 's', saveTimeout: -1 })).toThrow(/saveTimeout/)
  })

  it('passes proxy only when it is a boolean, as express-session reads it', () => {
    expect(translateOptions({ proxy: true }).options.proxy).toBe(true)
    expect(translateOptions({ proxy: false }).options.proxy).toBe(false)
    expect(translateOptions({ proxy: 'yes' as never }).options.proxy).toBeUndefined()
  })

  it('turns cookie.expires into a per-request maxAge, so each new cookie expires at that date', () => {
    const date = new Date(Date.now() + 60_000)
    const { options, staticCookie } = translateOptions({ cookie: { expires: date, path: '/app' } })
    expect(staticCookie).toBeUndefined()
    const cookie = (options.cookie as (req: IncomingMessage) => { maxAge: number; path: string })(
      request(),
    )
    expect(cookie.path).toBe('/app')
    expect(Math.abs(Date.now() + cookie.maxAge - date.getTime())).toBeLessThan(1000)
  })

  it("applies maxAge and expires in order: the later one wins, as in express-session's Cookie", () => {
    const soon = new Date(Date.now() + 5_000)
    expect(translateCookie({ maxAge: 60_000, expires: soon }).maxAge).toBeLessThanOrEqual(5_000)
    expect(translateCookie({ expires: soon, maxAge: 60_000 }).maxAge).toBe(60_000)
    expect(translateCookie({ expires: false }).maxAge).toBeNull()
    expect(translateCookie({ maxAge: -5 }).maxAge).toBe(0)
  })

  it("resolves sameSite 'auto' per request: None over HTTPS, Lax over HTTP, leaving secure as set (as express-session)", () => {
    expect(translateCookie({ sameSite: 'auto' }, request())).toEqual({ sameSite: 'lax' })
    expect(
      translateCookie({ sameSite: 'auto' }, request({}, { socket: { encrypted: true } })),
    ).toEqual({ sameSite: 'none' })
    expect(
      translateCookie(
        { sameSite: 'auto', secure: 'auto' },
        request({ 'x-forwarded-proto': 'https' }),
        true,
      ),
    ).toEqual({ sameSite: 'none', secure: 'auto' })
    expect(
      translateCookie({ sameSite: 'auto' }, request({ 'x-forwarded-proto': 'https' }), false),
    ).toEqual({ sameSite: 'lax' })
    expect(translateCookie({ sameSite: 'auto' }, request({}, { secure: true }))).toEqual({
      sameSite: 'none',
    })
  })

  it('ignores cookie keys express-session ignores, and normalizes case as the cookie module does', () => {
    expect(
      translateCookie({
        signed: true,
        encode: String,
        sameSite: 'Strict' as never,
        priority: 'High' as never,
      }),
    ).toEqual({
      sameSite: 'strict',
      priority: 'high',
    })
  })
})

describe('session(options) accepts whatever express-session accepts', () => {
  it('ignores unknown options instead of rejecting them', () => {
    expect(() =>
      session({
        secret: 's',
        resave: false,
        saveUninitialized: false,
        typo: true,
        cookieName: 'x',
      }),
    ).not.toThrow()
  })

  it('accepts cookie.expires, which the core rejects', () => {
    expect(() =>
      session({ secret: 's', cookie: { expires: new Date(Date.now() + 60_000) } }),
    ).not.toThrow()
  })

  it.each([-1, 1.5, Number.NaN, '10' as unknown as number])(
    'rejects rememberExpiries %p, naming session() and what it must be',
    (rememberExpiries) => {
      expect(() => session({ secret: 's', rememberExpiries })).toThrow(
        /^session\(\{ rememberExpiries \}\): rememberExpiries must be a whole number of session ids, 0 or more \(got (-1|1\.5|NaN|"10")\)$/,
      )
    },
  )

  it('takes rememberExpiries for an express-session store, 0 included', () => {
    const Legacy = (require('express-session') as { MemoryStore: new () => unknown }).MemoryStore
    expect(() => session({ secret: 's', rememberExpiries: 0 })).not.toThrow()
    expect(() =>
      session({ secret: 's', store: new Legacy(), rememberExpiries: 50_000 }),
    ).not.toThrow()
  })

  it('rejects rememberExpiries with a concord Store, which keeps its own expiries', () => {
    expect(() => session({ secret: 's', store: new MemoryStore(), rememberExpiries: 10 })).toThrow(
      /rememberExpiries applies to an express-session store only; a concord Store/,
    )
  })

  it('rejects a store that is neither an express-session store nor a concord Store, saying which it must be', () => {
    expect(() => session({ secret: 's', store: { get() {} } })).toThrow(
      /express-session store \(get\/set\/destroy with callbacks\) or a concord-session Store/,
    )
  })
})
