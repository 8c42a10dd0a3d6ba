/**
 * A small HTTP client for setting up sessions and for the probes (autocannon does the load).
 */
import { Agent, request as httpRequest, type Server } from 'node:http'

export interface Reply {
  status: number
  body: string
  /** `name=value` of each Set-Cookie, attributes dropped. */
  cookies: string[]
}

/**
 * How long the bench's servers keep an idle connection open (Node's default is 5 s), and how
 * long the bench's client keeps one. The client must give up first: a server closing a socket
 * at the moment the client sends on it resets the request (ECONNRESET, "socket hang up"), and
 * on a loaded machine the client may not see the server's FIN for a while. A slow system makes
 * that likely: while 200 probe requests queue for its store, the sockets of the first ones to
 * finish sit idle past 5 s, and the next probe reuses them.
 */
export const SERVER_KEEP_ALIVE_MS = 60_000
export const CLIENT_IDLE_MS = 20_000

/** Gives a bench server its idle-connection timeout: longer than the client's. */
export function keepAliveLongerThanClient(server: Server): void {
  server.keepAliveTimeout = SERVER_KEEP_ALIVE_MS
  server.headersTimeout = SERVER_KEEP_ALIVE_MS + 5_000
}

/**
 * Keep-alive, and as many sockets as a probe has requests in flight. `timeout` closes a socket
 * idle in the pool after CLIENT_IDLE_MS (Node ignores the server's Keep-Alive hint when no
 * timeout is set); a request in flight is never cut by it.
 */
export const agent = new Agent({ keepAlive: true, maxSockets: Infinity, timeout: CLIENT_IDLE_MS })

export function send(
  baseUrl: string,
  method: 'GET' | 'POST',
  path: string,
  cookie?: string,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      new URL(path, baseUrl),
      { method, agent, headers: cookie ? { cookie } : {} },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => (body += chunk))
        res.on('end', () => {
          const cookies = (res.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]!)
          resolve({ status: res.statusCode ?? 0, body, cookies })
        })
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end()
  })
}

/** Like send, but a non-2xx status is an error. */
export async function sendOk(
  baseUrl: string,
  method: 'GET' | 'POST',
  path: string,
  cookie?: string,
): Promise<Reply> {
  const reply = await send(baseUrl, method, path, cookie)
  if (reply.status < 200 || reply.status > 299) {
    throw new Error(
      `bench: ${method} ${baseUrl}${path} answered ${reply.status}: ${reply.body.slice(0, 300)}`,
    )
  }
  return reply
}

/** The products carts hold; writes cycle through them, so a cart stays a realistic size. */
export const SKUS = Array.from({ length: 10 }, (_, i) => `sku-${i}`)

/**
 * Logs in as a fresh user with a 5-item cart: the session every load request then carries.
 * Returns the `name=value` cookie to send, or '' for a system without sessions.
 */
export async function createSession(baseUrl: string, user: number): Promise<string> {
  // All servers set up their pools at once: on a busy machine a store may answer 503 (its
  // deadline passed). That is setup, not a measurement, so it tries again a few times.
  for (let attempt = 1; ; attempt++) {
    const login = await send(baseUrl, 'POST', `/login?u=${user}&items=5`)
    if (login.status >= 200 && login.status <= 299) return login.cookies[0] ?? ''
    if (login.status !== 503 || attempt === 5)
      throw new Error(
        `bench: POST ${baseUrl}/login answered ${login.status} (attempt ${attempt}): ${login.body.slice(0, 300)}`,
      )
  }
}

/** `count` sessions, made a few at a time. */
export async function createSessionPool(baseUrl: string, count: number): Promise<string[]> {
  const pool: string[] = new Array(count)
  let next = 0
  const worker = async () => {
    for (let i = next++; i < count; i = next++) pool[i] = await createSession(baseUrl, i)
  }
  await Promise.all(Array.from({ length: 8 }, worker))
  return pool
}
