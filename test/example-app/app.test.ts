/** The shop's routes over HTTP with supertest: no browser, the memory store, a fresh app per test. */
import request from 'supertest'
import type { Response } from 'supertest'
import { createApp, describeDevice, type ShopOptions } from '../../example-app/app.js'
import { OverlapStore } from './overlap-store.js'
import { testIdText } from './page-text.js'
import { useFakeDate } from '../support/clock.js'
import { storedId } from '../support/at-rest'

const stores: OverlapStore[] = []
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()))
})

function shop(options: Partial<ShopOptions> = {}) {
  const store = new OverlapStore()
  stores.push(store)
  const app = createApp({ store, secret: 'test-secret', storeName: 'memory', ...options })
  return { app, store, agent: () => request.agent(app) }
}

/** The session id in a response's shop.sid cookie, or undefined if it sets none. */
function cookieId(res: Response): string | undefined {
  const header = ([] as string[])
    .concat(res.headers['set-cookie'] ?? [])
    .find((c) => c.startsWith('shop.sid='))
  if (!header) return undefined
  const value = decodeURIComponent(header.slice('shop.sid='.length).split(';')[0]!)
  return value === '' ? '' : value.slice(2, value.lastIndexOf('.'))
}

describe('catalog and visit counter', () => {
  it('lists the products and counts visits in a cookie-backed session', async () => {
    const { agent } = shop()
    const browser = agent()
    const first = await browser.get('/').expect(200).expect('content-type', /html/)
    for (const name of [
      'Sencha green tea',
      'House espresso beans',
      'Stoneware mug',
      'Pour-over dripper',
      'Paper filters',
      'Wildflower honey',
    ]) {
      expect(first.text).toContain(name)
    }
    expect(testIdText(first.text, 'visits')).toBe('1')
    const cookie = ([] as string[]).concat(first.headers['set-cookie'] ?? [])[0]!
    expect(cookie).toMatch(/^shop\.sid=s%3A/)
    expect(cookie).toMatch(/HttpOnly/)
    expect(cookie).toMatch(/SameSite=Lax/)
    expect(cookie).toMatch(/Max-Age=1800/) // the idle timeout, re-sent by every response (rolling)

    const second = await browser.get('/cart').expect(200)
    expect(testIdText(second.text, 'visits')).toBe('2')
    expect(testIdText(second.text, 'store')).toBe('memory')
  })

  it('shows the idle and absolute expiry it was configured with', async () => {
    const { agent } = shop({ idleTimeout: 10 * 60_000, absoluteTimeout: 2 * 3_600_000 })
    const page = await agent().get('/').expect(200)
    expect(page.text).toMatch(/data-testid="idle-expiry">in 10 min <time datetime="[^"]+">/)
    expect(page.text).toContain('10 min after your last request')
    expect(page.text).toMatch(/data-testid="absolute-expiry">in 2 h <time/)
    expect(page.text).toContain('2 h after the session began, however active')
  })

  it('sends security headers, and serves its script without touching a session', async () => {
    const { agent, store } = shop()
    const page = await agent().get('/').expect(200)
    expect(page.headers['content-security-policy']).toContain("script-src 'self'")
    expect(page.headers['x-content-type-options']).toBe('nosniff')
    const script = await agent()
      .get('/shop.js')
      .expect(200)
      .expect('content-type', /javascript/)
    expect(script.headers['set-cookie']).toBeUndefined()
    await agent().get('/favicon.svg').expect(200).expect('content-type', /svg/)
    expect(await store.count()).toBe(1)
  })

  it('starts no session for a 404 or a look at an empty cart, and counts no visit for a 404', async () => {
    const { agent, store } = shop()
    const stray = await agent().get('/favicon.ico').expect(404)
    expect(stray.text).toContain('There is no such page.')
    expect(stray.headers['set-cookie']).toBeUndefined()
    await agent().get('/api/cart').expect(200, { count: 0, total: 0, items: [] })
    expect(await store.count()).toBe(0)

    const browser = agent()
    await browser.get('/')
    await browser.get('/nope').expect(404)
    expect(testIdText((await browser.get('/')).text, 'visits')).toBe('2')
  })
})

describe('cart', () => {
  it('adds, changes quantities, removes, and totals with shipping', async () => {
    const { agent } = shop()
    const browser = agent()
    await browser.get('/')
    await browser
      .post('/cart/add')
      .type('form')
      .send({ productId: 'mug', back: '/' })
      .expect(303)
      .expect('location', '/')
    await browser
      .post('/cart/add')
      .type('form')
      .send({ productId: 'mug', back: 'https://evil.example/' })
      .expect(303)
      .expect('location', '/cart')
    await browser.post('/cart/add').type('form').send({ productId: 'sencha' }).expect(303)

    let cart = await browser.get('/cart').expect(200)
    expect(cart.text).toContain('Added Sencha green tea to your cart.') // the flash, shown once
    expect(testIdText(cart.text, 'line-total-mug')).toBe('$28.00')
    expect(testIdText(cart.text, 'subtotal')).toBe('$36.50')
    expect(testIdText(cart.text, 'shipping')).toBe('$4.90')
    expect(testIdText(cart.text, 'total')).toBe('$41.40')
    expect(testIdText(cart.text, 'cart-count')).toBe('3')

    await browser
      .post('/cart/update')
      .type('form')
      .send({ productId: 'mug', quantity: '3' })
      .expect(303)
    cart = await browser.get('/cart')
    expect(cart.text).not.toContain('Added Sencha')
    expect(testIdText(cart.text, 'line-total-mug')).toBe('$42.00')
    expect(testIdText(cart.text, 'shipping')).toBe('Free') // $50.50 is over the free-shipping line
    expect(testIdText(cart.text, 'total')).toBe('$50.50')

    await browser
      .post('/cart/update')
      .type('form')
      .send({ productId: 'mug', quantity: '0' })
      .expect(303)
    await browser.post('/cart/remove').type('form').send({ productId: 'sencha' }).expect(303)
    cart = await browser.get('/cart')
    expect(cart.text).toContain('data-testid="cart-empty"')
    expect(testIdText(cart.text, 'cart-count')).toBe('0')
  })

  it('rejects unknown products and bad quantities, escaping what it echoes', async () => {
    const { agent } = shop()
    const browser = agent()
    const bad = await browser
      .post('/cart/add')
      .type('form')
      .send({ productId: '<script>alert(1)</script>' })
      .expect(400)
    expect(bad.text).toContain(
      'There is no product &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;',
    )
    expect(bad.text).not.toContain('<script>alert(1)')
    await browser.post('/cart/add').type('form').send({ productId: '__proto__' }).expect(400)
    await browser.post('/cart/add').type('form').send({ productId: 'honey' }).expect(303)
    await browser
      .post('/cart/update')
      .type('form')
      .send({ productId: 'honey', quantity: 'abc' })
      .expect(400)
    await browser
      .post('/cart/update')
      .type('form')
      .send({ productId: 'honey', quantity: '100' })
      .expect(400)
    await browser
      .post('/cart/update')
      .type('form')
      .send({ productId: 'honey', quantity: '-1' })
      .expect(400)
    const cart = await browser.get('/cart')
    expect(cart.text).toMatch(/data-testid="qty-honey"/)
    expect(cart.text).toMatch(/value="1" data-testid="qty-honey"/)
  })

  it('adds through the JSON API, and counts every one of many parallel adds', async () => {
    const { agent, store } = shop()
    const browser = agent()
    await browser.get('/') // the session and its cart exist before the adds race
    await browser
      .post('/api/cart/add')
      .type('form')
      .send({ productId: 'mug' })
      .expect(400, { error: 'Send JSON: {"productId": "..."}' })
    await browser
      .post('/api/cart/add')
      .send({ productId: 'nope' })
      .expect(400, { error: 'There is no product "nope"' })
    await browser
      .post('/api/cart/add')
      .set('content-type', 'application/json')
      .send('{bad json')
      .expect(400, { error: 'That request could not be read.' })

    const ids = [
      'sencha',
      'espresso',
      'mug',
      'dripper',
      'filters',
      'honey',
      'mug',
      'mug',
      'honey',
      'sencha',
    ]
    // All ten read the session before any saves: nine saves meet a newer version and merge into
    // it. This process made that version, so they merge in memory and the store sees no conflict.
    const overlapped = store.holdLoads(ids.length)
    const answers = await Promise.all(
      ids.map((productId) => browser.post('/api/cart/add').send({ productId })),
    )
    expect(await overlapped).toBe(true)
    expect(store.conflicts).toBe(0)
    expect(answers.map((a) => a.status)).toEqual(ids.map(() => 200))
    const cart = await browser.get('/api/cart').expect(200)
    expect(cart.body).toEqual({
      count: 10,
      total: 2 * 850 + 1200 + 3 * 1400 + 2200 + 450 + 2 * 975,
      items: [
        { productId: 'sencha', qty: 2 },
        { productId: 'espresso', qty: 1 },
        { productId: 'mug', qty: 3 },
        { productId: 'dripper', qty: 1 },
        { productId: 'filters', qty: 1 },
        { productId: 'honey', qty: 2 },
      ],
    })
  })

  it('caps one product at 99', async () => {
    const { agent } = shop()
    const browser = agent()
    await browser.post('/cart/add').type('form').send({ productId: 'filters' })
    await browser
      .post('/cart/update')
      .type('form')
      .send({ productId: 'filters', quantity: '99' })
      .expect(303)
    const over = await browser.post('/api/cart/add').send({ productId: 'filters' }).expect(400)
    expect(over.body).toEqual({ error: 'At most 99 of one product fit in a cart' })
  })
})

describe('sign-in, sessions and sign-out', () => {
  it('signs in with a new session id, keeps the cart, and indexes the session under the user', async () => {
    const { agent, store } = shop()
    const browser = agent()
    const guest = await browser.get('/')
    const guestId = cookieId(guest)!
    await browser.post('/api/cart/add').send({ productId: 'dripper' }).expect(200)

    const login = await browser
      .post('/login')
      .type('form')
      .send({ username: '  Alice  ' })
      .set('user-agent', 'Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0')
      .expect(303)
    expect(login.headers['location']).toBe('/')
    const userId = cookieId(login)!
    expect(userId).toMatch(/^[0-9a-f-]{36}$/)
    expect(userId).not.toBe(guestId)
    expect(await store.load(storedId(guestId, 'test-secret'))).toBeNull()
    expect(await store.listByUser('alice')).toEqual([storedId(userId, 'test-secret')])

    const home = await browser.get('/')
    expect(home.text).toContain('Welcome, Alice. Your cart came with you.')
    expect(testIdText(home.text, 'user')).toBe('Alice')
    expect(testIdText(home.text, 'cart-count')).toBe('1')
    expect(testIdText(home.text, 'session-id')).toBe(`${userId.slice(0, 8)}…`)

    const sessions = await browser.get('/sessions').expect(200)
    expect(sessions.text).toContain('Chrome on Linux')
    expect(sessions.text).toContain('this device')
  })

  it('escapes the user name everywhere it appears', async () => {
    const { agent } = shop()
    const browser = agent()
    const name = `<img src=x onerror="alert('x')">`
    await browser.post('/login').type('form').send({ username: name }).expect(303)
    for (const path of ['/', '/cart', '/sessions']) {
      const page = await browser.get(path).expect(200)
      expect(page.text).not.toContain('<img')
      expect(page.text).toContain('&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;')
    }
  })

  it('refuses an empty or overlong name and keeps what was typed, escaped', async () => {
    const { agent } = shop()
    const empty = await agent().post('/login').type('form').send({ username: '   ' }).expect(400)
    expect(empty.text).toContain('Type a name to sign in.')
    const long = await agent()
      .post('/login')
      .type('form')
      .send({ username: '"'.repeat(41) })
      .expect(400)
    expect(long.text).toContain('A name has at most 40 characters.')
    expect(long.text).toContain(`value="${'&quot;'.repeat(40)}"`)
  })

  it('sends signed-out visitors from /sessions to the sign-in page, and signed-in ones the other way', async () => {
    const { agent } = shop()
    const browser = agent()
    await browser.get('/sessions').expect(303).expect('location', '/login')
    await browser.post('/sessions/sign-out-everywhere').expect(303).expect('location', '/login')
    await browser.post('/login').type('form').send({ username: 'dana' })
    await browser.get('/login').expect(303).expect('location', '/sessions')
  })

  it("lists the user's sessions and signs them all out everywhere", async () => {
    const { agent, store } = shop()
    const laptop = agent()
    const phone = agent()
    const other = agent()
    await laptop
      .post('/login')
      .type('form')
      .send({ username: 'Bob' })
      .set('user-agent', 'Mozilla/5.0 (Windows NT 10.0) Firefox/121.0')
    await phone
      .post('/login')
      .type('form')
      .send({ username: 'bob' })
      .set('user-agent', 'Mozilla/5.0 (Linux; Android 14) Chrome/120.0 Mobile')
    await other.post('/login').type('form').send({ username: 'eve' })

    const list = await laptop.get('/sessions').expect(200)
    expect(list.text.match(/data-testid="session-row"/g)).toHaveLength(2)
    expect(list.text).toContain('Firefox on Windows')
    expect(list.text).toContain('Chrome on Android')
    expect(list.text).toContain('2 sessions')

    const out = await laptop
      .post('/sessions/sign-out-everywhere')
      .expect(303)
      .expect('location', '/login?signedOut=2')
    expect(cookieId(out)).toBe('') // the laptop's cookie is cleared
    expect(await store.listByUser('bob')).toEqual([])
    const notice = await laptop.get('/login?signedOut=2')
    expect(notice.text).toContain('Signed out everywhere: 2 sessions ended.')

    await phone.get('/sessions').expect(303).expect('location', '/login')
    expect(await store.listByUser('eve')).toHaveLength(1) // another user is untouched
  })

  it('signs out by destroying the session and clearing its cookie', async () => {
    const { agent, store } = shop()
    const browser = agent()
    const login = await browser.post('/login').type('form').send({ username: 'carol' })
    const id = cookieId(login)!
    await browser.post('/api/cart/add').send({ productId: 'honey' }).expect(200)

    const out = await browser.post('/logout').expect(303).expect('location', '/')
    const cleared = ([] as string[]).concat(out.headers['set-cookie'] ?? [])
    expect(cleared).toHaveLength(1)
    expect(cleared[0]).toMatch(/^shop\.sid=; .*Expires=Thu, 01 Jan 1970 00:00:00 GMT/)
    expect(await store.load(storedId(id, 'test-secret'))).toBeNull()

    const home = await browser.get('/')
    expect(testIdText(home.text, 'cart-count')).toBe('0')
    expect(home.text).not.toContain('data-testid="user"')
  })
})

describe('timeouts', () => {
  // Only Date is faked: the clock moves when the test says so, and nothing waits for real.
  const MIN = 60_000
  const clock = useFakeDate()
  const later = (ms: number) => clock.advance(ms)

  it('keeps a cart while the shopper is active, and forgets it after the idle timeout', async () => {
    const { agent } = shop({ idleTimeout: 30 * MIN })
    const browser = agent()
    await browser.post('/cart/add').type('form').send({ productId: 'mug' })
    later(29 * MIN)
    expect((await browser.get('/api/cart')).body.count).toBe(1)
    later(29 * MIN) // 58 minutes in, but never 30 idle
    expect((await browser.get('/api/cart')).body.count).toBe(1)
    later(31 * MIN)
    expect((await browser.get('/api/cart')).body.count).toBe(0)
  })

  it('ends a session at the absolute timeout however busy it is', async () => {
    const { agent } = shop({ idleTimeout: 30 * MIN, absoluteTimeout: 120 * MIN })
    const browser = agent()
    await browser.post('/cart/add').type('form').send({ productId: 'mug' })
    const counts: number[] = []
    for (let minute = 25; minute <= 150; minute += 25) {
      later(25 * MIN)
      counts.push((await browser.get('/api/cart')).body.count)
    }
    // 25, 50, 75, 100 minutes in: alive. 125 and 150: past the 120-minute limit.
    expect(counts).toEqual([1, 1, 1, 1, 0, 0])
  })
})

describe('describeDevice', () => {
  it.each([
    [
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0 Safari/605.1.15',
      'Safari on macOS',
    ],
    [
      'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36 Edg/120.0',
      'Edge on Windows',
    ],
    [
      'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Version/17.0 Mobile Safari/604.1',
      'Safari on iOS',
    ],
    [
      'Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0 Safari/537.36',
      'Headless Chrome on Linux',
    ],
    ['curl/8.5.0', 'curl'],
    [undefined, 'Unknown browser'],
  ])('%s -> %s', (ua, expected) => {
    expect(describeDevice(ua)).toBe(expected)
  })
})

describe('audit log', () => {
  it('logs each session lifecycle event as one line, with hashed ids only', async () => {
    const lines: string[] = []
    const { agent } = shop({ auditLog: (line) => lines.push(line) })
    const browser = agent()
    const first = await browser.get('/').expect(200)
    const id = cookieId(first)!
    await browser.post('/login').type('form').send({ username: 'Ada' }).expect(303)
    await browser.post('/logout').expect(303)

    const hash = '[A-Za-z0-9_-]{43}'
    const at = 'at=\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z'
    expect(lines).toHaveLength(3)
    expect(lines[0]).toMatch(new RegExp(`^session created ${at} sessionId=${hash}$`))
    expect(lines[1]).toMatch(
      new RegExp(`^session regenerated ${at} sessionId=${hash} previousSessionId=${hash}$`),
    )
    expect(lines[2]).toMatch(new RegExp(`^session destroyed ${at} sessionId=${hash} userId=ada$`))
    // The cookie's id never reaches the log.
    for (const line of lines) expect(line).not.toContain(id)
  })

  it('logs nothing without an audit log', async () => {
    const log = jest.spyOn(console, 'log').mockImplementation(() => {})
    try {
      const { agent } = shop()
      await agent().post('/login').type('form').send({ username: 'Ada' }).expect(303)
      expect(log).not.toHaveBeenCalled()
    } finally {
      log.mockRestore()
    }
  })
})
