/**
 * The yardstick: about the least a correct session middleware does. It parses one cookie,
 * verifies an express-session-format signed id (`s:<id>.<mac>`, HMAC-SHA256, compared with
 * timingSafeEqual), and looks the id up in a Map of JSON text with an idle expiry, touched on
 * load. When the response ends it stringifies and compares; on a change it writes back with a
 * version check, merging its changed top-level keys onto a newer version, and sends Set-Cookie.
 * Unknown or forged ids get a fresh one. A destroyed session is never written back.
 *
 * It is not a product: no options, no rotation, no stores. It is what the bench measures
 * concord-session's overhead against.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'

type Next = (err?: unknown) => void
interface Stored {
  text: string
  version: number
  expiresAt: number
}

const STATE = Symbol('limit session state')

interface State {
  id: string
  /** The text and version as loaded; null text for a new session. */
  text: string | null
  version: number
  destroyed: boolean
}

/** `req.session`: the data as own properties; bookkeeping under a symbol JSON never sees. */
class LimitSession {
  declare [STATE]: State
  destroy(this: LimitSession & { [STATE]: State }, callback: (err?: unknown) => void): void {
    this[STATE].destroyed = true
    sessions.delete(this[STATE].id)
    callback()
  }
}

const sessions = new Map<string, Stored>()

export interface LimitOptions {
  secret: string
  maxAge: number
  name?: string
}

/**
 * @example
 * ```ts
 * app.use(limitSession({ secret: 's3cret', maxAge: 86_400_000 }))
 * ```
 */
export function limitSession(
  options: LimitOptions,
): (req: IncomingMessage, res: ServerResponse, next: Next) => void {
  const { secret, maxAge } = options
  const name = options.name ?? 'connect.sid'
  const prefix = name + '='

  return function limit(req, res, next) {
    const now = Date.now()
    const id = verify(cookieValue(req.headers.cookie, prefix), secret)
    const stored = id === null ? undefined : sessions.get(id)
    let session: LimitSession
    if (id !== null && stored !== undefined && stored.expiresAt > now) {
      stored.expiresAt = now + maxAge // touch
      session = Object.assign(new LimitSession(), JSON.parse(stored.text) as object)
      session[STATE] = { id, text: stored.text, version: stored.version, destroyed: false }
    } else {
      if (stored !== undefined) sessions.delete(id!)
      session = new LimitSession()
      session[STATE] = { id: randomUUID(), text: null, version: 0, destroyed: false }
    }
    ;(req as { session?: unknown }).session = session

    const end = res.end
    res.end = function (this: ServerResponse, ...args: unknown[]) {
      res.end = end
      const current = (req as { session?: unknown }).session
      if (current === session && !session[STATE].destroyed) save(session, res, secret, name, maxAge)
      return (end as (...a: unknown[]) => ServerResponse).apply(this, args)
    } as typeof res.end
    next()
  }
}

function save(
  session: LimitSession,
  res: ServerResponse,
  secret: string,
  name: string,
  maxAge: number,
): void {
  const state = session[STATE]
  const text = JSON.stringify(session)
  if (text === state.text || (state.text === null && text === '{}')) return
  const now = Date.now()
  const stored = sessions.get(state.id)
  let written = text
  if (state.text !== null) {
    if (stored === undefined) return // destroyed meanwhile: never bring it back
    if (stored.version !== state.version)
      written = merge(JSON.parse(state.text), JSON.parse(text), JSON.parse(stored.text))
  }
  sessions.set(state.id, {
    text: written,
    version: (stored?.version ?? 0) + 1,
    expiresAt: now + maxAge,
  })
  const value = encodeURIComponent(`s:${state.id}.${mac(state.id, secret)}`)
  res.setHeader(
    'Set-Cookie',
    `${name}=${value}; Max-Age=${Math.round(maxAge / 1000)}; Path=/; Expires=${new Date(now + maxAge).toUTCString()}; HttpOnly; SameSite=Lax`,
  )
}

/** This request's changed top-level keys, onto the newer stored data. */
function merge(
  loaded: Record<string, unknown>,
  mine: Record<string, unknown>,
  theirs: Record<string, unknown>,
): string {
  for (const key of Object.keys(mine)) {
    if (JSON.stringify(mine[key]) !== JSON.stringify(loaded[key])) theirs[key] = mine[key]
  }
  for (const key of Object.keys(loaded)) if (!(key in mine)) delete theirs[key]
  return JSON.stringify(theirs)
}

function cookieValue(header: string | undefined, prefix: string): string | null {
  if (!header) return null
  const at = header.startsWith(prefix) ? 0 : header.indexOf('; ' + prefix) + 2
  if (at === 1) return null
  const start = at + prefix.length
  const end = header.indexOf(';', start)
  const raw = header.slice(start, end === -1 ? undefined : end)
  return raw.includes('%') ? decodeURIComponent(raw) : raw
}

function mac(id: string, secret: string): string {
  return createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, '')
}

/** The id of a valid `s:<id>.<mac>`, or null. */
function verify(value: string | null, secret: string): string | null {
  if (value === null || !value.startsWith('s:')) return null
  const dot = value.lastIndexOf('.')
  if (dot < 3) return null
  const id = value.slice(2, dot)
  const expected = Buffer.from(mac(id, secret))
  const given = Buffer.from(value.slice(dot + 1))
  return expected.length === given.length && timingSafeEqual(expected, given) ? id : null
}

/** Sessions held, for the bench's memory probe and tests. */
export function limitSessionCount(): number {
  return sessions.size
}
