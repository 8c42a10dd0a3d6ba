/**
 * The shop's session lifecycle over HTTP with supertest: id renewal with a moved clock, the limit
 * of signed-in devices per user, the audit log's lines, and both features turned off (with one
 * line each) on a store that cannot do them.
 */
import request from 'supertest'
import type { Response } from 'supertest'
import { sign } from 'cookie-signature'
import session, { MemoryStore } from '../../entries/index.js'
import { createApp, type ShopOptions } from '../../example-app/app.js'
import { duration } from '../../example-app/views.js'
import {
  cookieSessionId,
  DEFAULT_RENEW,
  describeRenewal,
  EvictionNotices,
  lifecycleFromEnv,
} from '../../example-app/lifecycle.js'
import { testIdText } from './page-text.js'
import { useFakeDate } from '../support/clock.js'
import { storedId } from '../support/at-rest.js'

const MIN = 60_000
const SECRET = 'test-secret'
const LIMIT_NOTICE =
  'You were signed out on this device because you signed in on another one: ' +
  'at most 3 devices stay signed in.'

const stores: MemoryStore[] = []
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()))
})

function shop(options: Partial<ShopOptions> = {}, store = new MemoryStore()) {
  stores.push(store)
  const setup: string[] = []
  const audit: string[] = []
  const app = createApp({
    store,
    secret: SECRET,
    storeName: 'memory',
    log: (line) => setup.push(line),
    auditLog: (line) => audit.push(line),
    ...options,
  })
  return { app, store, setup, audit, agent: () => request.agent(app) }
}

/** The signed value of a response's shop.sid cookie (`s:<id>.<mac>`), or undefined. */
function cookieValue(res: Response): string | undefined {
  const header = ([] as string[])
    .concat(res.headers['set-cookie'] ?? [])
    .find((c) => c.startsWith('shop.sid='))
  return header && decodeURIComponent(header.slice('shop.sid='.length).split(';')[0]!)
}

function idOf(value: string | undefined): string | undefined {
  return value ? value.slice(2, value.lastIndexOf('.')) : undefined
}

function signIn(agent: ReturnType<typeof request.agent>, name: string) {
  return agent.post('/login').type('form').send({ username: name }).expect(303)
}

/** A MemoryStore without one of its capabilities, as a store that lacks it looks. */
function without(capability: 'renew' | 'enforcesUserLimit'): MemoryStore {
  const store = new MemoryStore()
  Object.defineProperty(store, capability, { value: undefined })
  return store
}

describe('id renewal', () => {
  const clock = useFakeDate()

  it('renews a signed-in id after 15 min; cart, sign-in and audit line follow', async () => {
    const { app, agent, store, audit } = shop()
    const browser = agent()
    const login = await signIn(browser, 'Ada')
    await browser.post('/api/cart/add').send({ productId: 'mug' }).expect(200)
    const before = cookieValue(login)!
    const oldId = idOf(before)!

    clock.advance(14 * MIN)
    expect(cookieValue(await browser.get('/').expect(200))).toBe(before) // not due yet

    clock.advance(2 * MIN)
    const renewed = await browser.get('/').expect(200)
    const newId = idOf(cookieValue(renewed))!
    expect(newId).toMatch(/^[0-9a-f-]{36}$/)
    expect(newId).not.toBe(oldId)
    expect(testIdText(renewed.text, 'user')).toBe('Ada')
    expect(testIdText(renewed.text, 'cart-count')).toBe('1')
    expect(testIdText(renewed.text, 'session-id')).toBe(`${newId.slice(0, 8)}…`)
    expect(renewed.text).toContain('<small>new at every sign-in and every 15 min</small>')
    expect(await store.listByUser('ada')).toEqual([storedId(newId, SECRET)])
    expect(audit.filter((line) => line.startsWith('session renewed '))).toHaveLength(1)
    expect(audit.find((line) => line.startsWith('session renewed '))).toMatch(
      /^session renewed at=\S+ sessionId=[\w-]{43} previousSessionId=[\w-]{43} userId=ada$/,
    )

    // Within the grace a request still holding the old cookie reaches the session and is
    // handed the new id; after it, the old cookie is worth nothing.
    const late = await request(app)
      .get('/cart')
      .set('Cookie', `shop.sid=${encodeURIComponent(before)}`)
      .expect(200)
    expect(idOf(cookieValue(late))).toBe(newId)
    expect(testIdText(late.text, 'user')).toBe('Ada')
    clock.advance(31_000)
    const dead = await request(app)
      .get('/api/cart')
      .set('Cookie', `shop.sid=${encodeURIComponent(before)}`)
      .expect(200)
    expect(dead.body.count).toBe(0)
    expect(await store.load(storedId(oldId, SECRET))).toBeNull()
  })

  it('renews after N requests when asked to, and never with renew: false', async () => {
    const counted = shop({ renew: { afterRequests: 3 } }).agent()
    const ids: (string | undefined)[] = []
    for (let i = 0; i < 5; i++) ids.push(idOf(cookieValue(await counted.get('/').expect(200))))
    // The 1st request creates the session; the 2nd to 4th load it, and the 4th, the 3rd load
    // with that id, renews it.
    expect(ids[1]).toBe(ids[0])
    expect(ids[2]).toBe(ids[0])
    expect(ids[3]).not.toBe(ids[0])
    expect(ids[4]).toBe(ids[3])

    const never = shop({ renew: false }).agent()
    const first = idOf(cookieValue(await never.get('/').expect(200)))
    clock.advance(20 * MIN)
    expect(idOf(cookieValue(await never.get('/').expect(200)))).toBe(first)
  })

  it('is turned off with one line on a store that cannot renew, and the shop runs on', async () => {
    const store = without('renew')
    // session() itself refuses renewal for this store at setup:
    expect(() => session(store, { secret: SECRET, renew: DEFAULT_RENEW })).toThrow(
      /renew needs a store that can renew ids/,
    )
    const { agent, setup } = shop({}, store)
    expect(setup).toEqual(['Session id renewal is off: this MemoryStore cannot renew session ids.'])
    const browser = agent()
    const login = await signIn(browser, 'Ada')
    clock.advance(20 * MIN)
    const page = await browser.get('/').expect(200)
    expect(testIdText(page.text, 'user')).toBe('Ada')
    expect(cookieValue(page)).toBe(cookieValue(login)) // the same id: no renewal
    expect(page.text).toContain('<small>new at every sign-in</small>')
  })
})

describe('at most 3 signed-in devices per user', () => {
  it('signs the oldest device out at the 4th sign-in, and tells that device once', async () => {
    const { agent, store } = shop()
    const devices = [agent(), agent(), agent(), agent()]
    const ids: string[] = []
    for (const device of devices) ids.push(idOf(cookieValue(await signIn(device, 'Bob')))!)
    await signIn(agent(), 'eve') // another user is counted apart

    expect((await store.listByUser('bob')).sort()).toEqual(
      ids
        .slice(1)
        .map((id) => storedId(id, SECRET))
        .sort(),
    )
    expect(await store.load(storedId(ids[0]!, SECRET))).toBeNull()
    expect(await store.listByUser('eve')).toHaveLength(1)

    const list = await devices[3]!.get('/sessions').expect(200)
    expect(list.text.match(/data-testid="session-row"/g)).toHaveLength(3)
    expect(list.text).toContain(
      'At most <strong>3 devices stay</strong> signed in at once. Signing in on another device ' +
        'signs out the one that signed in longest ago.',
    )

    // The first device did nothing; its next page says why it is signed out, and only once.
    await devices[0]!.get('/sessions').expect(303).expect('location', '/login')
    const told = await devices[0]!.get('/login').expect(200)
    expect(told.text).toContain(LIMIT_NOTICE)
    expect(told.text).not.toContain('data-testid="user"')
    expect((await devices[0]!.get('/').expect(200)).text).not.toContain(LIMIT_NOTICE)
    // The three others are still signed in, and were told nothing.
    for (const device of devices.slice(1)) {
      const page = await device.get('/').expect(200)
      expect(testIdText(page.text, 'user')).toBe('Bob')
      expect(page.text).not.toContain(LIMIT_NOTICE)
    }
  })

  it('tells nothing of the limit to devices signed out otherwise', async () => {
    const { agent } = shop()
    const [a, b, c] = [agent(), agent(), agent()]
    await signIn(a, 'carol')
    await signIn(b, 'carol')
    await signIn(c, 'carol')
    await a.post('/logout').expect(303)
    await b.post('/sessions/sign-out-everywhere').expect(303)
    for (const device of [a, b, c]) {
      const page = await device.get('/login').expect(200)
      expect(page.text).not.toContain('signed in on another one')
    }
    // A signed-in device that signs in again is not "signed out by the limit" either.
    const d = agent()
    for (let i = 0; i < 5; i++) await d.post('/login').type('form').send({ username: 'dan' })
    expect((await d.get('/').expect(200)).text).not.toContain('signed in on another one')
  })

  it('keeps every device with maxDevices: false, and says nothing of a limit', async () => {
    const { agent, store } = shop({ maxDevices: false })
    const devices = [agent(), agent(), agent(), agent()]
    for (const device of devices) await signIn(device, 'Bob')
    expect(await store.listByUser('bob')).toHaveLength(4)
    const list = await devices[0]!.get('/sessions').expect(200)
    expect(list.text).not.toContain('data-testid="device-limit"')
    expect(list.text.match(/data-testid="session-row"/g)).toHaveLength(4)
  })

  it('takes another limit, with its number in the words', async () => {
    const { agent, store } = shop({ maxDevices: 1 })
    const [a, b] = [agent(), agent()]
    await signIn(a, 'Bob')
    await signIn(b, 'Bob')
    expect(await store.listByUser('bob')).toHaveLength(1)
    expect((await b.get('/sessions').expect(200)).text).toContain('At most <strong>1 device stays')
    const told = await a.get('/').expect(200) // its next page
    expect(told.text).toContain('at most 1 device stays signed in.')
  })

  it('is turned off with one line on a store that cannot enforce it', async () => {
    const store = without('enforcesUserLimit')
    expect(() => session(store, { secret: SECRET, maxSessionsPerUser: 3 })).toThrow(
      /maxSessionsPerUser needs a store that enforces it/,
    )
    const { agent, setup } = shop({}, store)
    expect(setup).toEqual([
      'The limit of 3 signed-in devices per user is off: this MemoryStore cannot enforce it.',
    ])
    const devices = [agent(), agent(), agent(), agent()]
    for (const device of devices) await signIn(device, 'Bob')
    expect(await store.listByUser('bob')).toHaveLength(4)
    expect((await devices[0]!.get('/sessions').expect(200)).text).not.toContain('device-limit')
  })
})

describe('audit log', () => {
  const clock = useFakeDate()

  it('logs renewed, expired and signed out everywhere, one line each', async () => {
    const { app, agent, audit } = shop({ idleTimeout: 30 * MIN })
    const laptop = agent()
    const phone = agent()
    await signIn(laptop, 'Ada')
    await signIn(phone, 'Ada')
    const added = await request(app).post('/cart/add').type('form').send({ productId: 'mug' })
    const guestCookie = `shop.sid=${encodeURIComponent(cookieValue(added)!)}`

    clock.advance(16 * MIN)
    await laptop.get('/').expect(200) // renewed
    await laptop.post('/sessions/sign-out-everywhere').expect(303)
    clock.advance(20 * MIN)
    // Idle for 36 minutes: expired at this load. (Sent by hand: a browser would have dropped
    // the cookie at its Expires; the store finds it expired all the same.)
    await request(app).get('/').set('Cookie', guestCookie).expect(200)

    const at = 'at=\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z'
    const hash = '[\\w-]{43}'
    const lines = (type: string) => audit.filter((line) => line.startsWith(`session ${type} `))
    expect(lines('renewed')).toEqual([
      expect.stringMatching(
        new RegExp(
          `^session renewed ${at} sessionId=${hash} previousSessionId=${hash} userId=ada$`,
        ),
      ),
    ])
    expect(lines('expired')).toEqual([
      expect.stringMatching(new RegExp(`^session expired ${at} sessionId=${hash} seenAt=load$`)),
    ])
    expect(lines('signedOutEverywhere')).toEqual([
      expect.stringMatching(new RegExp(`^session signedOutEverywhere ${at} userId=ada count=2$`)),
    ])
    for (const line of audit) expect(line).not.toMatch(/\n/)
  })
})

describe('lifecycleFromEnv', () => {
  it('defaults to renewal every 15 min with a 30 s grace, and 3 devices', () => {
    expect(lifecycleFromEnv({})).toEqual({
      renew: { every: '15m', grace: '30s' },
      maxDevices: 3,
    })
    expect(lifecycleFromEnv({ SESSION_RENEW_EVERY: ' ', SESSION_MAX_DEVICES: '' })).toEqual(
      lifecycleFromEnv({}),
    )
  })

  it('takes each variable, and off', () => {
    expect(
      lifecycleFromEnv({
        SESSION_RENEW_EVERY: '2h',
        SESSION_RENEW_AFTER_REQUESTS: '500',
        SESSION_RENEW_GRACE: '5000',
        SESSION_MAX_DEVICES: '5',
      }),
    ).toEqual({ renew: { every: '2h', afterRequests: 500, grace: 5000 }, maxDevices: 5 })
    expect(lifecycleFromEnv({ SESSION_RENEW_EVERY: 'off', SESSION_MAX_DEVICES: 'OFF' })).toEqual({
      renew: false,
      maxDevices: false,
    })
    expect(
      lifecycleFromEnv({ SESSION_RENEW_EVERY: 'off', SESSION_RENEW_AFTER_REQUESTS: '3' }).renew,
    ).toEqual({ afterRequests: 3, grace: '30s' })
  })

  it.each([
    ['SESSION_RENEW_EVERY', '15 minutes', /SESSION_RENEW_EVERY must be a duration .*"15 minutes"/],
    ['SESSION_RENEW_EVERY', '0', /SESSION_RENEW_EVERY must be a duration/],
    ['SESSION_RENEW_GRACE', 'off', /SESSION_RENEW_GRACE must be a duration .*; got "off"/],
    ['SESSION_RENEW_AFTER_REQUESTS', '0', /SESSION_RENEW_AFTER_REQUESTS must be a whole number/],
    ['SESSION_RENEW_AFTER_REQUESTS', '2.5', /SESSION_RENEW_AFTER_REQUESTS must be a whole number/],
    ['SESSION_MAX_DEVICES', '-1', /SESSION_MAX_DEVICES must be a whole number .*; got "-1"/],
    ['SESSION_MAX_DEVICES', 'three', /SESSION_MAX_DEVICES must be a whole number/],
  ])('refuses %s=%s, naming it', (name, value, message) => {
    expect(() => lifecycleFromEnv({ [name]: value })).toThrow(message)
  })
})

describe('describeRenewal', () => {
  it.each([
    [{ every: '15m' }, 'every 15 min'],
    [{ every: 7_200_000 }, 'every 2 h'],
    [{ every: '1.5h', afterRequests: 1000 }, 'every 1 h 30 min or 1000 requests'],
    [{ afterRequests: 1 }, 'every 1 request'],
  ])('%j -> %s', (renew, words) => {
    expect(describeRenewal(renew, duration)).toBe(words)
  })
})

describe('cookieSessionId', () => {
  const value = (id: string, secret: string) => encodeURIComponent(`s:${sign(id, secret)}`)

  it('reads the id of a cookie signed with any of the secrets', () => {
    const header = `a=1; shop.sid=${value('abc', 'old')}; b=2`
    expect(cookieSessionId(header, 'shop.sid', ['new', 'old'])).toBe('abc')
  })

  it('gives undefined for a missing, unsigned, tampered or badly encoded cookie', () => {
    expect(cookieSessionId(undefined, 'shop.sid', ['s'])).toBeUndefined()
    expect(cookieSessionId('other=1', 'shop.sid', ['s'])).toBeUndefined()
    expect(cookieSessionId('shop.sid=abc', 'shop.sid', ['s'])).toBeUndefined()
    expect(cookieSessionId(`shop.sid=${value('abc', 'x')}`, 'shop.sid', ['s'])).toBeUndefined()
    expect(cookieSessionId('shop.sid=%E0%A4%A', 'shop.sid', ['s'])).toBeUndefined()
  })
})

describe('EvictionNotices', () => {
  it('answers once per id, not after its time, and keeps at most max', () => {
    const notices = new EvictionNotices(1000, 2)
    notices.add('a', 0)
    expect(notices.take('a', 500)).toBe(true)
    expect(notices.take('a', 500)).toBe(false)
    notices.add('b', 0)
    expect(notices.take('b', 1000)).toBe(false) // expired
    notices.add('c', 0)
    notices.add('d', 0)
    notices.add('e', 0) // 'c' goes
    expect(notices.size).toBe(2)
    expect(notices.take('c', 1)).toBe(false)
    expect(notices.take('e', 1)).toBe(true)
  })
})
