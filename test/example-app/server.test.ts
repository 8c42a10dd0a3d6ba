/** example-app/server.ts as `npm start` runs it: a real process, its output, its exit. */
import { runServerToExit, startServer, type ServerProcess } from '../e2e/server-process.js'
import { freePort } from '../support/redis-server.js'

jest.setTimeout(30_000)

let server: ServerProcess | undefined
afterEach(async () => {
  await server?.stop()
  server = undefined
})

it('starts on the memory store, says where, warns about the dev secret, and exits 0 on SIGTERM', async () => {
  const port = await freePort()
  server = await startServer({ PORT: String(port), SESSION_SECRET: '', SESSION_STORE: '' }) // as if unset
  expect(server.output()).toContain(`Cart app on http://localhost:${port} (store: memory)`)
  expect(server.output()).toMatch(
    /SESSION_SECRET is not set; using the built-in development secret/,
  )

  const res = await fetch(`${server.url}/`)
  expect(res.status).toBe(200)
  expect(await res.text()).toContain('Corner Coffee &amp; Tea')
  expect(res.headers.get('set-cookie')).toMatch(/^shop\.sid=s%3A/)

  expect(await server.stop()).toBe(0)
  expect(server.output()).toContain('SIGTERM: shutting down')
})

it('uses SESSION_SECRET without a warning, and exits 0 on SIGINT', async () => {
  server = await startServer({
    PORT: String(await freePort()),
    SESSION_SECRET: 'a-real-secret',
    SESSION_STORE: 'memory',
  })
  expect(server.output()).not.toContain('SESSION_SECRET is not set')
  server.child.kill('SIGINT')
  const code = await new Promise<number | null>((resolve) => server!.child.once('exit', resolve))
  expect(code).toBe(0)
  expect(server.output()).toContain('SIGINT: shutting down')
})

it('refuses an unknown SESSION_STORE with a message and exit code 1', async () => {
  const { code, output } = await runServerToExit({
    PORT: String(await freePort()),
    SESSION_STORE: 'mongo',
  })
  expect(code).toBe(1)
  expect(output).toContain('SESSION_STORE must be memory, file or redis; got "mongo"')
})

it('renews ids and limits devices on the memory store without a word, and refuses a bad setting', async () => {
  server = await startServer({ PORT: String(await freePort()), SESSION_STORE: 'memory' })
  expect(server.output()).not.toContain('is off')
  await server.stop()

  const { code, output } = await runServerToExit({
    PORT: String(await freePort()),
    SESSION_STORE: 'memory',
    SESSION_MAX_DEVICES: 'lots',
  })
  expect(code).toBe(1)
  expect(output).toContain(
    'SESSION_MAX_DEVICES must be a whole number of at least 1, or off; got "lots"',
  )
})
