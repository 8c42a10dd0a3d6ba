/**
 * The shop on a phone-sized screen (390 px wide, as an iPhone 12-15), in Debian's chromium:
 * every page fits without sideways scrolling and the header stays whole. Also the error pages'
 * header, which must show who is signed in and what is in the cart, like every other page.
 */
import type { Page } from 'playwright-core'
import { MemoryStore } from '../../entries/index.js'
import { artifactPath, describeWithBrowser } from './browser.js'
import { checkLayout, type LayoutReport } from './layout.js'
import { addToCart, signIn, textOf } from './pages.js'
import { startShop, type ShopUnderTest } from './shop-under-test.js'

jest.setTimeout(60_000)

const PHONE = { width: 390, height: 844 }

// The DOM as far as the functions run in the page use it.
declare const document: { querySelector(selector: string): { value: string } | null }
declare const window: { scrollTo(x: number, y: number): void }

describeWithBrowser('the shop on a 390 px wide screen', () => {
  let shop: ShopUnderTest
  const store = new MemoryStore()

  beforeAll(async () => {
    shop = await startShop(store)
  })

  afterAll(async () => {
    await shop?.close()
    await store.close()
  })

  async function phone() {
    const context = await shop.browser.newContext({
      baseURL: shop.baseURL,
      viewport: PHONE,
      isMobile: true,
      hasTouch: true,
      deviceScaleFactor: 2,
    })
    context.setDefaultTimeout(15_000)
    return { context, page: await context.newPage() }
  }

  /** A shopper signed in as Dana with five items of four products in the cart. */
  async function signedInWithCart(page: Page) {
    await signIn(page, 'Dana')
    await addToCart(page, 'sencha', 1)
    await addToCart(page, 'espresso', 2)
    await addToCart(page, 'dripper', 3)
    await addToCart(page, 'honey', 4)
    await addToCart(page, 'honey', 5)
  }

  function expectFits(report: LayoutReport, where: string) {
    expect({ where, problems: report.problems }).toEqual({ where, problems: [] })
    expect(report.viewport).toBe(PHONE.width)
    expect(report.scrollWidth).toBeLessThanOrEqual(PHONE.width)
  }

  /** The brand and "Sign out" by their own boxes, at the top of the page: whole and within the screen. */
  async function expectOnScreen(page: Page) {
    await page.evaluate(() => window.scrollTo(0, 0)) // clicks lower down scrolled the page
    for (const locator of [
      page.locator('.top .brand'),
      page.locator('.top').getByRole('button', { name: 'Sign out', exact: true }),
    ]) {
      const box = await locator.boundingBox()
      expect(box).not.toBeNull()
      expect(box!.x).toBeGreaterThanOrEqual(0)
      expect(box!.y).toBeGreaterThanOrEqual(0)
      expect(box!.x + box!.width).toBeLessThanOrEqual(PHONE.width)
      expect(box!.y + box!.height).toBeLessThanOrEqual(PHONE.height)
      expect(box!.width).toBeGreaterThan(0)
    }
    expect(await textOf(page, 'user')).toBe('Dana')
  }

  it('fits the shop, cart and sessions pages without sideways scrolling, header whole', async () => {
    const { context, page } = await phone()
    await signedInWithCart(page)
    expectFits(await checkLayout(page, PHONE.width), 'shop')
    await expectOnScreen(page)
    await page.screenshot({ path: artifactPath('phone-shop.png'), fullPage: true })

    await page.goto('/cart')
    expect(await textOf(page, 'total')).toBe('$62.00')
    expectFits(await checkLayout(page, PHONE.width), 'cart')
    await expectOnScreen(page)
    await page.screenshot({ path: artifactPath('phone-cart.png'), fullPage: true })
    // The cart's forms still work at this size: change a quantity.
    await page.getByTestId('qty-honey').fill('1')
    await page.getByTestId('line-honey').getByRole('button', { name: 'Update' }).click()
    await page.getByText('Updated Wildflower honey.').waitFor()
    expect(await textOf(page, 'cart-count')).toBe('4')

    await page.goto('/sessions')
    expect(await page.getByTestId('session-row').count()).toBe(1)
    expectFits(await checkLayout(page, PHONE.width), 'sessions')
    // The device limit's message: shown, and whole within the screen (it wraps, never scrolls).
    const limit = page.getByTestId('device-limit')
    expect(await textOf(page, 'device-limit')).toMatch(
      /^At most 3 devices stay signed in at once\./,
    )
    const limitBox = await limit.boundingBox()
    expect(limitBox).not.toBeNull()
    expect(limitBox!.x).toBeGreaterThanOrEqual(0)
    expect(limitBox!.x + limitBox!.width).toBeLessThanOrEqual(PHONE.width)
    expect(
      await limit.evaluate(
        (el: { scrollWidth: number; clientWidth: number }) => el.scrollWidth - el.clientWidth,
      ),
    ).toBe(0)
    await expectOnScreen(page)
    await page.screenshot({ path: artifactPath('phone-sessions.png'), fullPage: true })

    // The narrowest phones in use are 320 px wide: the cart's lines wrap rather than clip.
    await page.setViewportSize({ width: 320, height: 640 })
    for (const path of ['/cart', '/sessions']) {
      await page.goto(path)
      expect({ path, problems: (await checkLayout(page, 320)).problems }).toEqual({
        path,
        problems: [],
      })
    }
    await context.close()
  })

  it('fits the sign-in page and the guest header', async () => {
    const { context, page } = await phone()
    await page.goto('/login')
    expectFits(await checkLayout(page, PHONE.width), 'sign-in')
    const box = await page.locator('.top').getByRole('link', { name: 'Sign in' }).boundingBox()
    expect(box!.x + box!.width).toBeLessThanOrEqual(PHONE.width)
    await context.close()
  })

  it('wraps the longest name a shopper can sign in with, in the header and the welcome notice', async () => {
    const { context, page } = await phone()
    const name = 'W'.repeat(40) // the widest letter, at the length limit, with no place to break
    await signIn(page, name)
    await page.getByText(`Welcome, ${name}.`).waitFor()
    expectFits(await checkLayout(page, PHONE.width), 'long name')
    await page.goto('/sessions')
    expectFits(await checkLayout(page, PHONE.width), 'long name, sessions')
    await context.close()
  })

  it('shows the signed-in header on a 404 and on an error page, and both fit', async () => {
    const { context, page } = await phone()
    await signedInWithCart(page)

    const missing = await page.goto('/no-such-page')
    expect(missing!.status()).toBe(404)
    expect(await textOf(page, 'cart-count')).toBe('5')
    await expectOnScreen(page)
    expectFits(await checkLayout(page, PHONE.width), '404')

    // A form that names no product: the error handler answers 400 with its own page.
    await page.goto('/cart')
    await page.evaluate(() => {
      document.querySelector(
        '[data-testid="line-honey"] form[action="/cart/remove"] input[name="productId"]',
      )!.value = 'no-such-product'
    })
    const answer = page.waitForResponse((r) => r.url().endsWith('/cart/remove'))
    await page.getByTestId('remove-honey').click()
    expect((await answer).status()).toBe(400)
    await page.getByText('There is no product "no-such-product"').waitFor()
    expect(await textOf(page, 'cart-count')).toBe('5')
    expect(await page.locator('.top').getByRole('link', { name: 'Sign in' }).count()).toBe(0)
    await expectOnScreen(page)
    expectFits(await checkLayout(page, PHONE.width), 'error page')
    await page.screenshot({ path: artifactPath('phone-error.png'), fullPage: true })
    await context.close()
  })
})
