/**
 * The cache of verified cookie values: a repeat cookie skips the HMAC, the cache stays bounded,
 * and a change of secrets never lets a value verified under the old ones through.
 */
import express from 'express'
import request from 'supertest'
import session, { MemoryStore } from '../entries/index'
import { signSessionId, VerifiedIdCache } from '../lib/cookie'
import { cookiePair, sessionCookie } from './support/http'

const id = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`

describe('VerifiedIdCache', () => {
  it('answers a repeat value from the cache, as the first verification did', () => {
    const cache = new VerifiedIdCache(10)
    const value = signSessionId(id(1), 'new')
    const first = cache.verify(value, ['new'])
    expect(first).toEqual({ id: id(1), rotated: false, signed: value })
    expect(cache.verify(value, ['new'])).toBe(first)
    expect(cache.size).toBe(1)
  })

  it('stays within its bound, dropping the oldest first', () => {
    const cache = new VerifiedIdCache(3)
    const values = Array.from({ length: 5 }, (_, i) => signSessionId(id(i), 'k'))
    for (const value of values) expect(cache.verify(value, ['k'])).not.toBeNull()
    expect(cache.size).toBe(3)
  })

  it('never remembers a value that failed', () => {
    const cache = new VerifiedIdCache(3)
    expect(cache.verify(signSessionId(id(1), 'other'), ['k'])).toBeNull()
    expect(cache.verify('s:garbage', ['k'])).toBeNull()
    expect(cache.size).toBe(0)
  })

  it('forgets everything when the secrets change: a removed secret vouches for nothing', () => {
    const cache = new VerifiedIdCache(10)
    const value = signSessionId(id(1), 'old')
    expect(cache.verify(value, ['old'])).not.toBeNull()
    expect(cache.verify(value, ['new'])).toBeNull() // not the cached answer
    expect(cache.size).toBe(0)
    // Rotation: the old secret still verifies, and the answer says it was rotated.
    expect(cache.verify(value, ['new', 'old'])).toMatchObject({ id: id(1), rotated: true })
    // A list with the same contents is the same secrets.
    expect(cache.verify(value, ['new', 'old'])).toMatchObject({ rotated: true })
    expect(cache.size).toBe(1)
  })

  it('rejects a bound that is not a positive integer', () => {
    expect(() => new VerifiedIdCache(0)).toThrow(/max must be a positive integer/)
  })
})

describe("session() with cookie-parser's secret", () => {
  it("verifies against each request's req.secret, not a cached earlier one", async () => {
    const store = new MemoryStore()
    let secret = 'first-secret'
    const app = express()
    app.use((req, _res, next) => {
      ;(req as unknown as { secret: string }).secret = secret
      next()
    })
    app.use(session(store))
    app.post('/', (req, res) => {
      ;(req.session as unknown as { n: number }).n = 1
      res.json({ id: req.session.id })
    })
    app.get('/', (req, res) => res.json({ id: req.session.id }))
    const created = await request(app).post('/')
    const cookie = cookiePair(sessionCookie(created))
    expect((await request(app).get('/').set('Cookie', cookie)).body.id).toBe(created.body.id)
    secret = 'second-secret'
    expect((await request(app).get('/').set('Cookie', cookie)).body.id).not.toBe(created.body.id)
    await store.close()
  })
})
