import { createHmac } from 'node:crypto'
import {
  clearCookie,
  readCookieValues,
  readSessionCookie,
  serializeCookie,
  signSessionId,
  validateCookieAttributes,
  verifySessionId,
} from '../lib/cookie'

const ID = '6f1c6a9e-7f5e-4a8e-9a57-0c1d2e3f4a5b'

/** express-session's format, computed independently of cookie-signature. */
function expressSessionValue(id: string, secret: string): string {
  const mac = createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, '')
  return `s:${id}.${mac}`
}

describe('readCookieValues', () => {
  it('returns every value of the named cookie in header order, decoded', () => {
    expect(readCookieValues('a=1; sid=s%3Ax; other=2; sid=y', 'sid')).toEqual(['s:x', 'y'])
  })

  it('ignores cookies whose name only contains the wanted name', () => {
    expect(readCookieValues('xsid=1; sidx=2; sid =3', 'sid')).toEqual(['3'])
  })

  it('copes with no header, empty pieces, quoted values and malformed escapes', () => {
    expect(readCookieValues(undefined, 'sid')).toEqual([])
    expect(readCookieValues(';;  ; sid', 'sid')).toEqual([])
    expect(readCookieValues('sid="quoted"', 'sid')).toEqual(['quoted'])
    expect(readCookieValues('sid=%E0%A4%A', 'sid')).toEqual(['%E0%A4%A'])
  })

  it('skips a value longer than a browser would ever send', () => {
    expect(readCookieValues(`sid=${'a'.repeat(5000)}; sid=ok`, 'sid')).toEqual(['ok'])
  })
})

describe('signing', () => {
  it("signs in express-session's s:<id>.<mac> format", () => {
    expect(signSessionId(ID, 'keyboard cat')).toBe(expressSessionValue(ID, 'keyboard cat'))
  })

  it("verifies its own signature and express-session's", () => {
    expect(verifySessionId(expressSessionValue(ID, 'k'), ['k'])).toEqual({
      id: ID,
      rotated: false,
      signed: expressSessionValue(ID, 'k'),
    })
  })

  it('rejects a wrong secret, a tampered id, a tampered mac, and a missing s: prefix', () => {
    const good = signSessionId(ID, 'k')
    expect(verifySessionId(good, ['other'])).toBeNull()
    expect(verifySessionId(good.replace('6f1c', '6f1d'), ['k'])).toBeNull()
    expect(verifySessionId(good.slice(0, -1) + (good.endsWith('A') ? 'B' : 'A'), ['k'])).toBeNull()
    expect(verifySessionId(good.slice(2), ['k'])).toBeNull()
  })

  it('rejects trailing garbage after a valid mac', () => {
    const good = signSessionId(ID, 'k')
    expect(verifySessionId(`${good}x`, ['k'])).toBeNull()
    expect(verifySessionId(`${good}.${good}`, ['k'])).toBeNull()
  })

  it('rejects a correctly signed id that is not a valid session id', () => {
    expect(verifySessionId(signSessionId('../../etc/passwd', 'k'), ['k'])).toBeNull()
  })

  it('rotates secrets: verifies with any, reports when an older one was used', () => {
    expect(verifySessionId(signSessionId(ID, 'new'), ['new', 'old'])).toMatchObject({
      id: ID,
      rotated: false,
    })
    expect(verifySessionId(signSessionId(ID, 'old'), ['new', 'old'])).toMatchObject({
      id: ID,
      rotated: true,
    })
    expect(verifySessionId(signSessionId(ID, 'retired'), ['new', 'old'])).toBeNull()
  })

  it('picks the first of several same-named cookies whose signature verifies', () => {
    const header = `sid=${encodeURIComponent(signSessionId('forged', 'wrong'))}; sid=${encodeURIComponent(signSessionId(ID, 'k'))}`
    expect(readSessionCookie(header, 'sid', ['k'])).toEqual({
      id: ID,
      rotated: false,
      signed: signSessionId(ID, 'k'),
    })
    expect(readSessionCookie('sid=garbage; sid=s%3A', 'sid', ['k'])).toBeNull()
  })
})

describe('serializeCookie', () => {
  it('writes every attribute', () => {
    const now = Date.UTC(2026, 0, 1)
    const header = serializeCookie(
      'sid',
      's:abc.mac',
      {
        expires: new Date(now + 3_600_000),
        domain: 'example.com',
        path: '/shop',
        httpOnly: true,
        secure: true,
        sameSite: 'strict',
        partitioned: true,
        priority: 'high',
      },
      now,
    )
    expect(header).toBe(
      'sid=s%3Aabc.mac; Max-Age=3600; Domain=example.com; Path=/shop; Expires=Thu, 01 Jan 2026 01:00:00 GMT; ' +
        'HttpOnly; Secure; Partitioned; Priority=High; SameSite=Strict',
    )
  })

  it('writes a browser-session cookie without Expires or Max-Age', () => {
    expect(
      serializeCookie('sid', 'v', {
        expires: null,
        path: '/',
        httpOnly: true,
        secure: false,
        sameSite: 'lax',
      }),
    ).toBe('sid=v; Path=/; HttpOnly; SameSite=Lax')
  })

  it('clears a cookie with a past expiry and the same path and domain', () => {
    expect(
      clearCookie('sid', { path: '/a', domain: 'example.com', httpOnly: true, secure: false }),
    ).toBe(
      'sid=; Max-Age=0; Domain=example.com; Path=/a; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly',
    )
  })
})

describe('validateCookieAttributes', () => {
  it.each([
    ['__Host-sid', { secure: true, path: '/' }],
    ['__Secure-sid', { secure: true, domain: 'example.com' }],
    ['sid', { sameSite: 'none', secure: 'auto' }],
    ['sid', { maxAge: 0 }],
    ['sid', { maxAge: null }],
  ] as const)('accepts %s with %j', (name, attributes) => {
    expect(() => validateCookieAttributes(name, attributes)).not.toThrow()
  })

  it.each([
    ['__Host-sid', { secure: 'auto' }, /"__Host-" cookie needs cookie.secure: true/],
    ['__Host-sid', { secure: true, domain: 'example.com' }, /must not set cookie.domain/],
    ['__Host-sid', { secure: true, path: '/app' }, /needs cookie.path "\/"/],
    ['__Secure-sid', { secure: false }, /"__Secure-" cookie needs cookie.secure: true/],
    ['sid', { sameSite: 'none', secure: false }, /sameSite "none" needs secure/],
    ['sid', { partitioned: true, secure: false }, /partitioned cookies need secure/],
    ['sid', { maxAge: -1 }, /maxAge must be a number/],
    ['sid', { maxAge: '1h' }, /maxAge must be a number/],
    ['sid', { path: 'shop' }, /path must start with "\/"/],
    ['sid', { path: '/a;b' }, /path must start with "\/"/],
    ['sid', { domain: 'exa mple.com' }, /domain must be a host name/],
    ['sid', { sameSite: 'sometimes' }, /sameSite must be/],
    ['sid', { priority: 'urgent' }, /priority must be/],
    ['sid', { httpOnly: 'yes' }, /httpOnly must be true or false/],
    ['sid', { expires: new Date() }, /set cookie.maxAge \(ms\) instead/],
  ])('rejects %s with %j', (name, attributes, message) => {
    expect(() => validateCookieAttributes(name, attributes as never)).toThrow(message)
  })
})
