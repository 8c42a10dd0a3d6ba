/** The shop running in this process on a free port, with a browser to visit it. */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Browser } from 'playwright-core'
import { createApp, type ShopOptions } from '../../example-app/app.js'
import type { Store } from '../../entries/index.js'
import { launchBrowser } from './browser.js'

export interface ShopUnderTest {
  browser: Browser
  /** e.g. http://127.0.0.1:40123 */
  baseURL: string
  /** Closes the browser and the server; the store is the caller's to close. */
  close(): Promise<void>
}

/**
 * Starts the shop on `store` (with any other `createApp` options) and launches the browser.
 *
 * @example
 * ```ts
 * const shop = await startShop(new MemoryStore())
 * const context = await shop.browser.newContext({ baseURL: shop.baseURL })
 * ```
 */
export async function startShop(
  store: Store,
  options: Partial<ShopOptions> = {},
): Promise<ShopUnderTest> {
  const browser = await launchBrowser()
  const app = createApp({ store, secret: 'e2e-secret', storeName: 'memory', ...options })
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  return {
    browser,
    baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      await browser.close()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}
