/** What a shopper does on the shop's pages, in playwright-core terms (no @playwright/test). */
import type { Page } from 'playwright-core'

/**
 * The little of the DOM that functions run in the page use. Declared here, in this module's
 * scope, because the project's TypeScript lib is Node's, without the DOM.
 */
export interface PageElement {
  textContent: string | null
  click(): void
}
export interface PageDocument {
  querySelector(selector: string): PageElement | null
  querySelectorAll(selector: string): Iterable<PageElement>
  body: { dataset: Record<string, string | undefined> }
}
declare const document: PageDocument

/** The trimmed text of the element with this data-testid. */
export async function textOf(page: Page, testId: string): Promise<string | undefined> {
  return (await page.getByTestId(testId).textContent())?.trim()
}

/** Waits until the element with this data-testid shows exactly `text`; the error says what it showed. */
export async function waitForText(
  page: Page,
  testId: string,
  text: string,
  timeout = 10_000,
): Promise<void> {
  try {
    await page.waitForFunction(
      ([id, want]) => document.querySelector(`[data-testid="${id}"]`)?.textContent?.trim() === want,
      [testId, text] as const,
      { timeout },
    )
  } catch (err) {
    const shown = await textOf(page, testId).catch(() => '(no such element)')
    throw new Error(
      `[data-testid="${testId}"] never showed "${text}"; it shows "${shown}" (${(err as Error).message.split('\n')[0]})`,
      { cause: err },
    )
  }
}

/** Clicks "Add to cart" on a product card and waits for the cart badge to show `expectedCount`. */
export async function addToCart(
  page: Page,
  productId: string,
  expectedCount: number,
): Promise<void> {
  const added = page.waitForResponse(
    (r) => r.url().endsWith('/api/cart/add') && r.request().method() === 'POST',
  )
  await page.getByTestId(`add-${productId}`).click()
  const response = await added
  if (response.status() !== 200)
    throw new Error(`adding ${productId} answered ${response.status()}: ${await response.text()}`)
  await waitForText(page, 'cart-count', String(expectedCount))
}

export async function signIn(page: Page, name: string): Promise<void> {
  await page.goto('/login')
  await page.locator('#username').fill(name)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL((url) => url.pathname === '/')
  await waitForText(page, 'user', name)
}

/** The quantity of each product on the cart page, by product id. */
export async function cartQuantities(page: Page): Promise<Record<string, number>> {
  await page.goto('/cart')
  const inputs = await page.locator('input[type="number"][name="quantity"]').all()
  const quantities: Record<string, number> = {}
  for (const input of inputs) {
    const id = (await input.getAttribute('data-testid'))!.replace(/^qty-/, '')
    quantities[id] = Number(await input.inputValue())
  }
  return quantities
}
