/**
 * The shop on a store chosen by SESSION_STORE_URL (and SESSION_HOT_STORE_URL), as `npm start`
 * runs it: PostgreSQL, and Redis over PostgreSQL, keep the cart across a restart; the start-up
 * message never shows a password; a URL it cannot use stops the start with the schemes it knows.
 */
import { runServerToExit, startServer, type ServerProcess } from '../e2e/server-process.js'
import { PG_URL, dropSchema, testSchema } from '../support/postgres.js'
import { freePort, redisUrl, testPrefix } from '../support/redis-server.js'

jest.setTimeout(60_000)

const schema = testSchema('shop')
const running = new Set<ServerProcess>()
afterAll(async () => {
  await Promise.all([...running].map((s) => s.stop()))
  await dropSchema(schema)
})

/** The test database's URL with a password in it (trust auth ignores it), to see it is masked. */
function pgUrlWithPassword(table: string): string {
  const url = new URL(PG_URL)
  url.password = 'pw-not-to-be-shown'
  url.searchParams.set('schema', schema)
  url.searchParams.set('table', table)
  return url.toString()
}

async function start(env: Record<string, string>): Promise<ServerProcess> {
  const server = await startServer({
    SESSION_SECRET: 'store-url-secret',
    SESSION_STORE: '',
    ...env,
  })
  running.add(server)
  return server
}

async function restartKeepsCart(env: Record<string, string>, kind: string): Promise<void> {
  const port = String(await freePort())
  const first = await start({ ...env, PORT: port })
  expect(first.store).toBe(kind)
  // The line after the URL says where sessions live.
  while (!first.output().includes('Sessions: '))
    await new Promise((resolve) => first.child.stdout!.once('data', resolve))
  expect(first.output()).toMatch(/Sessions: .*\*\*\*/)
  expect(first.output()).not.toContain('pw-not-to-be-shown')
  const add = await fetch(`${first.url}/api/cart/add`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ productId: 'espresso' }),
  })
  expect(add.status).toBe(200)
  const cookie = add.headers.get('set-cookie')!.split(';')[0]!
  expect(await first.stop()).toBe(0)
  running.delete(first)

  const second = await start({ ...env, PORT: port })
  const cart = await fetch(`${second.url}/api/cart`, { headers: { cookie } })
  expect(cart.status).toBe(200)
  expect(JSON.stringify(await cart.json())).toContain('espresso')
  expect(await second.stop()).toBe(0)
  running.delete(second)
}

it('keeps the cart across a restart on PostgreSQL (SESSION_STORE_URL=postgres://…)', async () => {
  await restartKeepsCart({ SESSION_STORE_URL: pgUrlWithPassword('shop_sessions') }, 'postgres')
})

it('keeps the cart across a restart on Redis over PostgreSQL (SESSION_HOT_STORE_URL=redis://…)', async () => {
  const hot = `${redisUrl()}/?prefix=${encodeURIComponent(testPrefix('shop-hot'))}`
  await restartKeepsCart(
    { SESSION_STORE_URL: pgUrlWithPassword('shop_layered'), SESSION_HOT_STORE_URL: hot },
    'layered',
  )
})

it('refuses a URL it cannot use, naming the schemes, without its password, and exits 1', async () => {
  const { code, output } = await runServerToExit({
    PORT: String(await freePort()),
    SESSION_STORE_URL: 'mongodb://admin:pw-not-to-be-shown@db/shop',
  })
  expect(code).toBe(1)
  expect(output).toMatch(
    /unsupported scheme "mongodb:".*memory:, file:<dir>, redis:\/\/, rediss:\/\/, postgres:\/\/ or postgresql:\/\//,
  )
  expect(output).not.toContain('pw-not-to-be-shown')
})
