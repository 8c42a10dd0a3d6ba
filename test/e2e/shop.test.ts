/**
 * The shop in a real browser (Debian's chromium through playwright-core), with the app in this
 * process on the memory store. Restarts on the file and Redis stores are in restart.test.ts.
 */
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { OverlapStore } from '../example-app/overlap-store.js'
import { artifactPath, describeWithBrowser, newContext, sessionIdIn } from './browser.js'
import { checkLayout } from './layout.js'
import {
  addToCart,
  cartQuantities,
  signIn,
  textOf,
  waitForText,
  type PageDocument,
} from './pages.js'
import { REPO } from './server-process.js'
import { startShop, type ShopUnderTest } from './shop-under-test.js'

jest.setTimeout(60_000)

declare const document: PageDocument // in functions that run in the page

describeWithBrowser('the shop in a browser (memory store)', () => {
  let shop: ShopUnderTest
  const store = new OverlapStore()

  beforeAll(async () => {
    shop = await startShop(store)
  })

  afterAll(async () => {
    await shop?.close()
    await store.close()
  })

  async function newPage() {
    const context = await newContext(shop.browser, shop.baseURL)
    context.setDefaultTimeout(15_000)
    return { context, page: await context.newPage() }
  }

  it('keeps the cart across a reload, with quantities and totals', async () => {
    const { context, page } = await newPage()
    await page.goto('/')
    await addToCart(page, 'sencha', 1)
    await addToCart(page, 'mug', 2)
    await addToCart(page, 'mug', 3)

    await page.reload()
    expect(await textOf(page, 'cart-count')).toBe('3')
    expect(await textOf(page, 'in-cart-mug')).toBe('2 in your cart')
    await page.screenshot({ path: artifactPath('shop.png'), fullPage: true })
    expect(await cartQuantities(page)).toEqual({ sencha: 1, mug: 2 })
    expect(await textOf(page, 'subtotal')).toBe('$36.50')
    expect(await textOf(page, 'shipping')).toBe('$4.90')
    expect(await textOf(page, 'total')).toBe('$41.40')

    // Change a quantity and remove a product with the cart page's forms (no script involved).
    await page.getByTestId('qty-mug').fill('3')
    await page.getByTestId('line-mug').getByRole('button', { name: 'Update' }).click()
    await waitForText(page, 'line-total-mug', '$42.00')
    await page.getByTestId('remove-sencha').click()
    await page.getByTestId('line-sencha').waitFor({ state: 'detached' })

    await page.reload()
    expect(await cartQuantities(page)).toEqual({ mug: 3 })
    expect(await textOf(page, 'shipping')).toBe('Free')
    expect(await textOf(page, 'total')).toBe('$42.00')
    await context.close()
  })

  it('counts every item when several adds are in flight at once', async () => {
    const { context, page } = await newPage()
    await page.goto('/')
    const sent: string[] = []
    page.on('request', (r) => {
      if (r.url().endsWith('/api/cart/add')) sent.push(r.postData() ?? '')
    })
    const statuses: number[] = []
    page.on('response', (r) => {
      if (r.url().endsWith('/api/cart/add')) statuses.push(r.status())
    })

    // Six loads held until all six have read the session: they all start from the same version.
    const overlapped = store.holdLoads(6)
    const conflictsBefore = store.conflicts
    // Click "Add to cart" on every product, and on the mug twice, without waiting in between:
    // the page's script sends one fetch() per click.
    const clicks = await page.evaluate(() => {
      const buttons = [...document.querySelectorAll('form[data-add] button')]
      buttons.push(document.querySelector('[data-testid="add-mug"]')!)
      buttons.forEach((b) => b.click())
      return buttons.length
    })
    expect(clicks).toBe(7)
    await page.waitForFunction(() => document.body.dataset.pending === '0')
    await waitForText(page, 'cart-count', '7')

    expect(sent).toHaveLength(7)
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200])
    if (await overlapped) {
      // Six requests read the same version, so all but one had to merge into a newer one. This
      // process wrote that version, so they merged in memory: the store saw no conflict.
      expect(store.conflicts - conflictsBefore).toBe(0)
    } else {
      console.warn(
        'The browser did not send six adds at once; the merge path may not have run in this test.',
      )
    }

    await page.reload()
    expect(await textOf(page, 'cart-count')).toBe('7')
    expect(await cartQuantities(page)).toEqual({
      sencha: 1,
      espresso: 1,
      mug: 2,
      dripper: 1,
      filters: 1,
      honey: 1,
    })
    await context.close()
  })

  it('gives the session a new id at sign-in and keeps the cart', async () => {
    const { context, page } = await newPage()
    await page.goto('/')
    await addToCart(page, 'espresso', 1)
    await addToCart(page, 'dripper', 2)
    await addToCart(page, 'honey', 3)
    const guestId = await sessionIdIn(context)
    expect(guestId).toMatch(/^[0-9a-f-]{36}$/)

    await signIn(page, 'Alice')
    const userId = await sessionIdIn(context)
    expect(userId).toMatch(/^[0-9a-f-]{36}$/)
    expect(userId).not.toBe(guestId)
    expect(await store.load(guestId!)).toBeNull() // the guest id is dead, not just abandoned
    expect(await textOf(page, 'session-id')).toBe(`${userId!.slice(0, 8)}…`)
    expect(await textOf(page, 'cart-count')).toBe('3')
    expect(await cartQuantities(page)).toEqual({ espresso: 1, dripper: 1, honey: 1 })

    await page.getByTestId('qty-espresso').fill('2')
    await page.getByTestId('line-espresso').getByRole('button', { name: 'Update' }).click()
    await waitForText(page, 'line-total-espresso', '$24.00')
    await page.goto('/cart') // without the "Updated" notice
    // The desktop layout: it fits, and the header is one bar of 56 px (the narrow layout stacks it).
    expect((await checkLayout(page, 1040)).problems).toEqual([])
    expect((await page.locator('.top').boundingBox())?.height).toBe(56)
    await page.screenshot({ path: artifactPath('cart.png'), fullPage: true })
    if (process.env.UPDATE_DOCS_SCREENSHOTS)
      copyFileSync(artifactPath('cart.png'), join(REPO, 'docs', 'cart.png'))
    await context.close()
  })

  it('"sign out everywhere" in one browser signs the user out in the other', async () => {
    const laptop = await newPage()
    const phone = await newPage()
    await signIn(laptop.page, 'Bob')
    await signIn(phone.page, 'bob') // names are case-insensitive: the same user
    const phoneId = await sessionIdIn(phone.context)

    await laptop.page.goto('/sessions')
    expect(await laptop.page.getByTestId('session-row').count()).toBe(2)
    expect(await laptop.page.locator('tr.current').count()).toBe(1)
    await laptop.page.screenshot({ path: artifactPath('sessions.png'), fullPage: true })
    await phone.page.goto('/sessions')
    expect(await phone.page.getByTestId('session-row').count()).toBe(2)

    await laptop.page.getByTestId('sign-out-everywhere').click()
    await laptop.page.waitForURL((url) => url.pathname === '/login')
    expect(await textOf(laptop.page, 'signed-out')).toBe('Signed out everywhere: 2 sessions ended.')

    // The phone did nothing, yet its next request finds itself signed out.
    expect(await store.load(phoneId!)).toBeNull()
    await phone.page.goto('/sessions')
    expect(new URL(phone.page.url()).pathname).toBe('/login')
    expect(await phone.page.getByTestId('user').count()).toBe(0)
    expect(await sessionIdIn(phone.context)).not.toBe(phoneId)
    expect(await store.listByUser('bob')).toEqual([])
    await laptop.context.close()
    await phone.context.close()
  })

  it('clears the cookie at sign-out', async () => {
    const { context, page } = await newPage()
    await signIn(page, 'Carol')
    await addToCart(page, 'filters', 1)
    const id = await sessionIdIn(context)

    const logout = page.waitForResponse(
      (r) => r.url().endsWith('/logout') && r.request().method() === 'POST',
    )
    await page.getByRole('button', { name: 'Sign out' }).click()
    const response = await logout
    expect(response.status()).toBe(303)
    const setCookie = (await response.headerValue('set-cookie')) ?? ''
    expect(setCookie).toMatch(/^shop\.sid=;/)
    expect(setCookie).toMatch(/Expires=Thu, 01 Jan 1970 00:00:00 GMT/)

    // Back on the shop as a new guest: another session, an empty cart, and the old one gone.
    await page.waitForURL((url) => url.pathname === '/')
    await page.getByRole('link', { name: 'Sign in' }).waitFor()
    expect(await textOf(page, 'cart-count')).toBe('0')
    expect(await textOf(page, 'visits')).toBe('1')
    expect(await sessionIdIn(context)).not.toBe(id)
    expect(await store.load(id!)).toBeNull()
    await context.close()
  })
})
