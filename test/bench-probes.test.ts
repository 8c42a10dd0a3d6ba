/**
 * The bench's correctness probes (bench/probes.ts) and its HTTP client: a dropped connection is
 * reported as a failed update rather than ending a long run, and the client never reuses a
 * keep-alive socket that the bench's servers are about to close.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import session, { MemoryStore } from '../entries/index'
import {
  agent,
  CLIENT_IDLE_MS,
  createSession,
  keepAliveLongerThanClient,
  send,
  SERVER_KEEP_ALIVE_MS,
} from '../bench/http'
import { probeLostUpdates } from '../bench/probes'
import { cartApp } from '../bench/servers/cart-app'
import type { Middleware } from '../bench/peers'

const servers: Server[] = []
const stores: MemoryStore[] = []

/** The bench's cart app on concord + MemoryStore; requests for `drop` lose their connection. */
async function start(
  drop: ReadonlySet<string> = new Set(),
  configure: (server: Server) => void = () => {},
): Promise<string> {
  const store = new MemoryStore()
  stores.push(store)
  const app = cartApp(session(store, { secret: 'probe-secret' }) as unknown as Middleware)
  const server = createServer((req, res) => {
    if (drop.has(req.url ?? '')) return void req.socket.destroy()
    app(req, res)
  })
  configure(server)
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

afterAll(async () => {
  agent.destroy()
  for (const server of servers) await new Promise((resolve) => server.close(resolve))
  for (const store of stores) await store.close()
})

describe('the lost-update probe', () => {
  it('finds every concurrent add in the cart on concord, with and without a cart first', async () => {
    const url = await start()
    expect(await probeLostUpdates(url, 20, true)).toEqual({ sent: 20, survived: 20, failed: 0 })
    expect(await probeLostUpdates(url, 20, false)).toEqual({ sent: 20, survived: 20, failed: 0 })
  })

  it('counts a request whose connection was dropped as failed, and finishes', async () => {
    const url = await start(new Set(['/cart/add/probe-1', '/cart/add/probe-3']))
    expect(await probeLostUpdates(url, 5, true)).toEqual({ sent: 5, survived: 3, failed: 2 })
  })
})

describe('the bench client', () => {
  const idleSockets = (url: string) =>
    Object.entries(agent.freeSockets)
      .filter(([name]) => name.startsWith(`${new URL(url).hostname}:${new URL(url).port}:`))
      .flatMap(([, sockets]) => sockets ?? [])

  it('closes an idle keep-alive socket well before the bench servers would', async () => {
    expect(CLIENT_IDLE_MS).toBeLessThanOrEqual(SERVER_KEEP_ALIVE_MS / 2)
    const url = await start(new Set(), keepAliveLongerThanClient)
    expect((await send(url, 'GET', '/cart')).status).toBe(200)
    const idle = idleSockets(url)
    expect(idle.length).toBeGreaterThan(0)
    for (const socket of idle) expect(socket.timeout).toBe(CLIENT_IDLE_MS)
  })

  it("follows a shorter server's Keep-Alive hint, closing a second before it", async () => {
    const url = await start() // Node's default: 5 s, announced as Keep-Alive: timeout=5
    expect((await send(url, 'GET', '/cart')).status).toBe(200)
    const idle = idleSockets(url)
    expect(idle.length).toBeGreaterThan(0)
    for (const socket of idle) expect(socket.timeout).toBe(4000)
  })
})

describe('making the pool of sessions', () => {
  /** A login that answers each status of `statuses` in turn, then 200 with a cookie. */
  async function flakyLogin(statuses: number[]): Promise<{ url: string; calls: () => number }> {
    let calls = 0
    const server = createServer((_req, res) => {
      const status = statuses[calls++] ?? 200
      if (status === 200) res.setHeader('set-cookie', 'sid=abc; Path=/; HttpOnly')
      res.writeHead(status).end(status === 200 ? '{"ok":true}' : 'store busy')
    })
    servers.push(server)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      calls: () => calls,
    }
  }

  it('asks again after a 503 and returns the cookie', async () => {
    const login = await flakyLogin([503, 503])
    expect(await createSession(login.url, 1)).toBe('sid=abc')
    expect(login.calls()).toBe(3)
  })

  it('gives up after five 503s, and at once on any other error, saying which', async () => {
    const busy = await flakyLogin([503, 503, 503, 503, 503])
    await expect(createSession(busy.url, 1)).rejects.toThrow(/answered 503 \(attempt 5\)/)
    expect(busy.calls()).toBe(5)
    const broken = await flakyLogin([500])
    await expect(createSession(broken.url, 1)).rejects.toThrow(/answered 500 \(attempt 1\)/)
    expect(broken.calls()).toBe(1)
  })
})
