/**
 * Restarts of the real server process (`node --import tsx example-app/server.ts`, as `npm start`
 * runs it) under a browser that keeps its cookie: the file and Redis stores keep the cart, the
 * memory store does not.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { freePort, redisUrl, testPrefix } from '../support/redis-server.js'
import { describeWithBrowser, launchBrowser, newContext, sessionIdIn } from './browser.js'
import { addToCart, cartQuantities, textOf } from './pages.js'
import { startServer, type ServerProcess } from './server-process.js'

jest.setTimeout(60_000)

describeWithBrowser('the shop across server restarts', () => {
  let browser: Browser
  const running = new Set<ServerProcess>()
  const dirs: string[] = []

  beforeAll(async () => {
    browser = await launchBrowser()
  })

  afterAll(async () => {
    await browser?.close()
    await Promise.all([...running].map((s) => s.stop()))
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })

  async function start(env: Record<string, string>): Promise<ServerProcess> {
    const server = await startServer(env)
    running.add(server)
    return server
  }

  async function stop(server: ServerProcess): Promise<void> {
    const code = await server.stop()
    running.delete(server)
    expect({ code, output: server.output() }).toEqual({
      code: 0,
      output: expect.stringContaining('SIGTERM: shutting down'),
    })
  }

  /** Fills a cart, restarts the server on the same port, reloads: what does the cart hold? */
  async function restartWithCart(kind: string, env: Record<string, string>) {
    const port = await freePort()
    const fullEnv = { ...env, PORT: String(port), SESSION_SECRET: 'e2e-restart-secret' }
    const first = await start(fullEnv)
    expect(first.store).toBe(kind)
    expect(first.url).toBe(`http://localhost:${port}`)

    const context = await newContext(browser, first.url)
    context.setDefaultTimeout(15_000)
    const page = await context.newPage()
    await page.goto('/')
    await addToCart(page, 'espresso', 1)
    await addToCart(page, 'filters', 2)
    const visitsBefore = Number(await textOf(page, 'visits'))
    const id = await sessionIdIn(context)

    await stop(first)
    const second = await start(fullEnv)
    expect(second.url).toBe(first.url)

    await page.reload()
    const after = {
      quantities: await cartQuantities(page),
      visits: Number(await textOf(page, 'visits')),
      store: await textOf(page, 'store'),
      sameSession: (await sessionIdIn(context)) === id,
    }
    await context.close()
    await stop(second)
    return { visitsBefore, after }
  }

  it('keeps the cart with the file store (SESSION_STORE=file)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'concord-shop-e2e-'))
    dirs.push(dir)
    const { visitsBefore, after } = await restartWithCart('file', {
      SESSION_STORE: 'file',
      SESSION_DIR: dir,
    })
    expect(after).toEqual({
      quantities: { espresso: 1, filters: 1 },
      visits: visitsBefore + 2,
      store: 'file',
      sameSession: true,
    })
  })

  it('keeps the cart with the Redis store (SESSION_STORE=redis)', async () => {
    const { visitsBefore, after } = await restartWithCart('redis', {
      SESSION_STORE: 'redis',
      REDIS_URL: redisUrl(),
      REDIS_PREFIX: testPrefix('shop-e2e'),
    })
    expect(after).toEqual({
      quantities: { espresso: 1, filters: 1 },
      visits: visitsBefore + 2,
      store: 'redis',
      sameSession: true,
    })
  })

  it('keeps the cart with the Redis store on node-redis (REDIS_CLIENT=node-redis)', async () => {
    const { visitsBefore, after } = await restartWithCart('redis', {
      SESSION_STORE: 'redis',
      REDIS_CLIENT: 'node-redis',
      REDIS_URL: redisUrl(),
      REDIS_PREFIX: testPrefix('shop-e2e-node'),
    })
    expect(after).toEqual({
      quantities: { espresso: 1, filters: 1 },
      visits: visitsBefore + 2,
      store: 'redis',
      sameSession: true,
    })
  })

  it('loses the cart with the memory store, which lives in the process', async () => {
    const { after } = await restartWithCart('memory', { SESSION_STORE: 'memory' })
    expect(after).toEqual({ quantities: {}, visits: 2, store: 'memory', sameSession: false })
  })
})
