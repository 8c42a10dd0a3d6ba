/**
 * Browser helpers for the e2e tests: Debian's chromium driven by playwright-core. Nothing here
 * downloads a browser. Without /usr/bin/chromium the browser tests are skipped with a message,
 * except in CI (process.env.CI), where that is a failure.
 */
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser, type BrowserContext } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'
export const ARTIFACTS = join(__dirname, '..', '..', 'test-artifacts')

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
]

/** `describe` for tests that need the browser: skipped (with a message) or failing (in CI) without it. */
export function describeWithBrowser(name: string, body: () => void): void {
  if (existsSync(CHROMIUM)) {
    describe(name, body)
  } else if (process.env.CI) {
    describe(name, () => {
      it('needs chromium', () => {
        throw new Error(
          `${CHROMIUM} is missing, and CI must run the browser tests: apt-get install -y chromium`,
        )
      })
    })
  } else {
    // Straight to stderr: jest drops console output of a file whose tests are all skipped.
    process.stderr.write(
      `\nSkipping browser tests "${name}": ${CHROMIUM} is missing. Install it with: apt-get install -y chromium\n`,
    )
    describe.skip(name, body)
  }
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true })
}

export function newContext(browser: Browser, baseURL: string): Promise<BrowserContext> {
  return browser.newContext({ baseURL, viewport: { width: 1040, height: 760 } })
}

/** The session id in the context's `shop.sid` cookie, or undefined. The value is `s:<id>.<signature>`. */
export async function sessionIdIn(
  context: BrowserContext,
  name = 'shop.sid',
): Promise<string | undefined> {
  const cookie = (await context.cookies()).find((c) => c.name === name)
  if (!cookie) return undefined
  const value = decodeURIComponent(cookie.value)
  const dot = value.lastIndexOf('.')
  if (!value.startsWith('s:') || dot < 3)
    throw new Error(`unexpected ${name} cookie value: ${cookie.value}`)
  return value.slice(2, dot)
}

export function artifactPath(file: string): string {
  mkdirSync(ARTIFACTS, { recursive: true })
  return join(ARTIFACTS, file)
}
