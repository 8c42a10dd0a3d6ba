import {
  fromBlob,
  EXPRESS_SESSION_IDLE_TIMEOUT,
  META_KEY,
  toBlob,
} from '../../lib/formats/express-session.js'
import { EXPRESS_SESSION_COOKIE } from '../../lib/compat/options.js'
import { StoreError, type SessionRecord } from '../../lib/store.js'
import { expressSession } from '../compat/support/modules.js'

const HOUR = 3_600_000

function record(overrides: Partial<SessionRecord> = {}): SessionRecord {
  const now = Date.now()
  return {
    data: {},
    cookie: {},
    createdAt: now - 1000,
    expiresAt: now + HOUR,
    idleTimeout: HOUR,
    version: 3,
    ...overrides,
  }
}

/** What express-session writes for a fresh session with these cookie options (its Cookie#toJSON). */
function expressSessionCookieJson(options: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(JSON.stringify(new expressSession.Cookie(options)))
}

describe('toBlob: the session as express-session stores it', () => {
  it("writes express-session's cookie exactly, for a browser-session cookie", () => {
    const blob = toBlob(record({ data: { views: '2' } }), EXPRESS_SESSION_COOKIE)
    expect(JSON.parse(JSON.stringify(blob.cookie))).toEqual(expressSessionCookieJson({}))
    expect(JSON.stringify(blob.cookie)).toBe(JSON.stringify(expressSessionCookieJson({})))
  })

  it("writes express-session's cookie for a maxAge cookie, with expires at the session's expiry", () => {
    const r = record({ cookie: {}, idleTimeout: HOUR })
    const defaults = {
      ...EXPRESS_SESSION_COOKIE,
      maxAge: HOUR,
      sameSite: 'strict' as const,
      secure: true,
    }
    const json = JSON.parse(JSON.stringify(toBlob(r, defaults).cookie))
    const theirs = expressSessionCookieJson({ maxAge: HOUR, sameSite: 'strict', secure: true })
    expect(Object.keys(json)).toEqual(Object.keys(theirs))
    expect(json).toEqual({ ...theirs, expires: new Date(r.expiresAt).toISOString() })
  })

  it("gives the cookie a non-enumerable maxAge, as express-session's Cookie has, for memorystore's TTL", () => {
    const r = record({ cookie: { originalMaxAge: HOUR } })
    const cookie = toBlob(r).cookie as { maxAge: number }
    expect(cookie.maxAge).toBeGreaterThan(HOUR - 5000)
    expect(cookie.maxAge).toBeLessThanOrEqual(HOUR)
    expect(Object.keys(cookie)).not.toContain('maxAge')
  })

  it('without cookie defaults records the idle period as originalMaxAge, so store TTLs follow the server expiry', () => {
    const r = record({ idleTimeout: 86_400_000 })
    const cookie = JSON.parse(JSON.stringify(toBlob(r).cookie))
    expect(cookie).toEqual({
      originalMaxAge: 86_400_000,
      expires: new Date(r.expiresAt).toISOString(),
      httpOnly: true,
      path: '/',
    })
  })

  it('puts data at the top level and the record fields under __concord', () => {
    const r = record({
      data: { cart: '{"items":["tea"]}', views: '2' },
      userId: 'u1',
      cookie: { originalMaxAge: 5000 },
    })
    const blob = JSON.parse(JSON.stringify(toBlob(r)))
    expect(blob).toEqual({
      cookie: expect.any(Object),
      cart: { items: ['tea'] },
      views: 2,
      [META_KEY]: {
        version: 3,
        createdAt: r.createdAt,
        expiresAt: r.expiresAt,
        idleTimeout: HOUR,
        userId: 'u1',
        cookie: { originalMaxAge: 5000 },
      },
    })
    expect(Object.keys(blob)[0]).toBe('cookie')
  })

  it("keeps data keys named like the blob's own keys in the meta, and __proto__ as an ordinary key", () => {
    const r = record({
      data: JSON.parse(
        '{"cookie":"{\\"x\\":1}","__concord":"1","__proto__":"{\\"polluted\\":true}"}',
      ),
    })
    const blob = toBlob(r)
    expect((blob[META_KEY] as { reservedKeys: unknown }).reservedKeys).toEqual({
      cookie: '{"x":1}',
      __concord: '1',
    })
    expect(Object.keys(blob)).toContain('__proto__')
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(fromBlob('id', JSON.parse(JSON.stringify(blob)), Date.now()).data).toEqual(r.data)
  })
})

describe('fromBlob', () => {
  it('round-trips what toBlob wrote, through JSON, with and without cookie defaults', () => {
    const r = record({
      data: { a: '1', b: '{"c":[1,2]}', s: '"Zoë ✓"' },
      cookie: { originalMaxAge: HOUR, sameSite: 'strict' },
      userId: 'u',
    })
    expect(fromBlob('id', JSON.parse(JSON.stringify(toBlob(r))), Date.now())).toEqual(r)
    const noMaxAge = record({ data: { a: '1' } })
    expect(
      fromBlob(
        'id',
        JSON.parse(JSON.stringify(toBlob(noMaxAge, EXPRESS_SESSION_COOKIE))),
        Date.now(),
        EXPRESS_SESSION_COOKIE,
      ),
    ).toEqual(noMaxAge)
  })

  it('reads a session express-session wrote: version 0, its maxAge kept, expiry from cookie.expires', () => {
    const now = Date.now()
    const expires = new Date(now + 60_000).toISOString()
    const written = {
      cookie: { originalMaxAge: 60_000, expires, httpOnly: true, path: '/' },
      views: 4,
      user: { name: 'ann' },
    }
    expect(fromBlob('id', written, now)).toEqual({
      data: { views: '4', user: '{"name":"ann"}' },
      cookie: { originalMaxAge: 60_000 },
      createdAt: now,
      expiresAt: Date.parse(expires),
      idleTimeout: 60_000,
      version: 0,
    })
  })

  it('gives an express-session browser-session cookie the default idle period', () => {
    const now = Date.now()
    const record = fromBlob(
      'id',
      { cookie: { originalMaxAge: null, expires: null, httpOnly: true, path: '/' }, n: 1 },
      now,
    )
    expect(record).toMatchObject({
      cookie: { originalMaxAge: null },
      idleTimeout: EXPRESS_SESSION_IDLE_TIMEOUT,
      expiresAt: now + EXPRESS_SESSION_IDLE_TIMEOUT,
    })
  })

  it('takes a maxAge an express-session process set since ("remember me"), and the later expiry', () => {
    const r = record()
    const blob = JSON.parse(JSON.stringify(toBlob(r, EXPRESS_SESSION_COOKIE)))
    const later = Date.now() + 30 * 24 * HOUR
    blob.cookie.originalMaxAge = 30 * 24 * HOUR // what express-session writes back, meta untouched
    blob.cookie.expires = new Date(later).toISOString()
    const read = fromBlob('id', blob, Date.now(), EXPRESS_SESSION_COOKIE)
    expect(read.cookie).toEqual({ originalMaxAge: 30 * 24 * HOUR })
    expect(read.expiresAt).toBe(later)
    expect(read.version).toBe(3)
  })

  it('treats a malformed __concord as data, and a non-object as corrupt', () => {
    expect(fromBlob('id', { cookie: {}, __concord: 'mine' }, 0).data).toEqual({
      __concord: '"mine"',
    })
    expect(() => fromBlob('id', 'not a session', 0)).toThrow(StoreError)
    expect(() => fromBlob('id', ['x'], 0)).toThrow(/not a session object/)
  })
})
