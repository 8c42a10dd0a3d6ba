/**
 * The session lifecycle in a real browser: id renewal (driven by a low
 * SESSION_RENEW_AFTER_REQUESTS in a real server process, so no clock is involved) keeps the
 * cart and the sign-in, and the per-user device limit signs the oldest browser context out and
 * tells it so.
 */
import type { Browser } from 'playwright-core'
import { MemoryStore } from '../../entries/index.js'
import { freePort } from '../support/redis-server.js'
import { storedId } from '../support/at-rest.js'
import { describeWithBrowser, launchBrowser, newContext, sessionIdIn } from './browser.js'
import { addToCart, cartQuantities, signIn, textOf } from './pages.js'
import { startServer, type ServerProcess } from './server-process.js'
import { startShop, type ShopUnderTest } from './shop-under-test.js'

jest.setTimeout(60_000)

const LIMIT_NOTICE =
  'You were signed out on this device because you signed in on another one: ' +
  'at most 3 devices stay signed in.'

describeWithBrowser('id renewal in a browser (server process, memory store)', () => {
  let browser: Browser
  let server: ServerProcess | undefined

  beforeAll(async () => {
    browser = await launchBrowser()
  })

  afterAll(async () => {
    await browser?.close()
    if (server) expect(await server.stop()).toBe(0)
  })

  it('changes the cookie id every 3 requests; the cart and the sign-in survive', async () => {
    server = await startServer({
      PORT: String(await freePort()),
      SESSION_SECRET: 'e2e-renew-secret',
      SESSION_STORE: 'memory',
      SESSION_RENEW_AFTER_REQUESTS: '3',
      // Long enough that the old cookie's grace cannot run out during the test on a busy machine.
      SESSION_RENEW_GRACE: '10m',
    })
    const context = await newContext(browser, server.url)
    context.setDefaultTimeout(15_000)
    const page = await context.newPage()
    await page.goto('/')
    await addToCart(page, 'sencha', 1)
    await signIn(page, 'Grace')
    const signedInAs = await sessionIdIn(context)
    const oldCookie = (await context.cookies()).find((c) => c.name === 'shop.sid')!

    // The page after sign-in was the 1st request with this id; the 3rd renews it.
    const seen: (string | undefined)[] = []
    for (let i = 0; i < 2; i++) {
      await page.goto('/')
      seen.push(await sessionIdIn(context))
    }
    expect(seen[0]).toBe(signedInAs)
    const renewed = seen[1]!
    expect(renewed).toMatch(/^[0-9a-f-]{36}$/)
    expect(renewed).not.toBe(signedInAs)
    expect(await textOf(page, 'user')).toBe('Grace')
    expect(await textOf(page, 'cart-count')).toBe('1')
    expect(await textOf(page, 'session-id')).toBe(`${renewed.slice(0, 8)}…`)
    expect(await cartQuantities(page)).toEqual({ sencha: 1 })

    // A tab still on the old cookie, within the grace: it reaches the session and is moved to
    // the new id, never back to the old one.
    const stale = await newContext(browser, server.url)
    await stale.addCookies([oldCookie])
    const stalePage = await stale.newPage()
    await stalePage.goto('/cart')
    expect(await textOf(stalePage, 'user')).toBe('Grace')
    expect(await textOf(stalePage, 'cart-count')).toBe('1')
    expect(await sessionIdIn(stale)).toBe(renewed)
    await stale.close()

    // The audit log has a line for the renewal, with the user and no raw id.
    // (The guest's session may have been renewed too, before sign-in: that line has no user.)
    const renewedLines = server.output().match(/^session renewed .*$/gm) ?? []
    for (const line of renewedLines)
      expect(line).toMatch(
        /^session renewed at=\S+ sessionId=[\w-]{43} previousSessionId=[\w-]{43}( userId=grace)?$/,
      )
    expect(renewedLines.filter((line) => line.endsWith(' userId=grace'))).toHaveLength(1)
    expect(server.output()).toMatch(
      /^session regenerated at=\S+ sessionId=[\w-]{43} previousSessionId=/m,
    )
    expect(server.output()).not.toContain(signedInAs!)
    expect(server.output()).not.toContain(renewed)
    await context.close()
  })
})

describeWithBrowser('the device limit in a browser (memory store)', () => {
  let shop: ShopUnderTest
  const store = new MemoryStore()

  beforeAll(async () => {
    shop = await startShop(store)
  })

  afterAll(async () => {
    await shop?.close()
    await store.close()
  })

  it('signs the first of 4 devices out and tells it; the sessions page says 3', async () => {
    const devices = []
    for (let i = 0; i < 4; i++) {
      const context = await newContext(shop.browser, shop.baseURL)
      context.setDefaultTimeout(15_000)
      devices.push({ context, page: await context.newPage() })
    }
    await devices[0]!.page.goto('/')
    await addToCart(devices[0]!.page, 'mug', 1)
    const ids: (string | undefined)[] = []
    for (const { context, page } of devices) {
      await signIn(page, 'Erin')
      ids.push(await sessionIdIn(context))
    }
    // The store lists sessions by their stored id, the keyed hash of the cookie's id.
    expect((await store.listByUser('erin')).sort()).toEqual(
      ids
        .slice(1)
        .map((id) => storedId(id!, 'e2e-secret'))
        .sort(),
    )

    const last = devices[3]!.page
    await last.goto('/sessions')
    expect(await last.getByTestId('session-row').count()).toBe(3)
    expect(await textOf(last, 'device-limit')).toBe(
      'At most 3 devices stay signed in at once. Signing in on another device signs out the one ' +
        'that signed in longest ago.',
    )

    // The first device did nothing since; its next page shows it signed out, and why.
    const first = devices[0]!.page
    await first.goto('/cart')
    await first.getByText(LIMIT_NOTICE).waitFor()
    expect(await first.getByTestId('user').count()).toBe(0)
    expect(await first.locator('.top').getByRole('link', { name: 'Sign in' }).count()).toBe(1)
    expect(await sessionIdIn(devices[0]!.context)).not.toBe(ids[0])
    await first.reload()
    expect(await first.getByText(LIMIT_NOTICE).count()).toBe(0) // said once

    // The second is still signed in.
    await devices[1]!.page.goto('/')
    expect(await textOf(devices[1]!.page, 'user')).toBe('Erin')
    for (const { context } of devices) await context.close()
  })
})
