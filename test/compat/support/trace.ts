/**
 * Runs one script of requests against an app and records what a browser would see, in a
 * form two implementations can be compared in: session ids become #1, #2, ... in order of
 * appearance, Expires becomes "future" or "past", and Max-Age (which concord adds and
 * express-session leaves out) is dropped.
 */
import type { RequestHandler } from 'express'
import request from 'supertest'

export interface Step {
  method?: 'get' | 'post'
  path: string
  headers?: Record<string, string>
  /** Which app of the scenario handles it. Default 0. */
  app?: number
  /** Send the cookie the browser held after step N instead of the current one; 'none' sends none. */
  cookieFrom?: number | 'none'
}

export interface SeenCookie {
  name: string
  /** `#n` for the nth session id seen, or 'cleared'. */
  value: string
  attributes: Record<string, string | true>
}

export interface Seen {
  status: number
  body: unknown
  cookies: SeenCookie[]
}

export interface TraceOptions {
  /** Keep session ids as they are (for genid) instead of numbering them. */
  rawIds?: boolean
  /** Keep the Expires date itself (for cookie.expires) instead of "future". */
  exactExpires?: boolean
}

type App = RequestHandler | ((req: any, res: any) => void)

/**
 * Runs `steps` against `apps` with one browser's cookie jar.
 *
 * @example
 * ```ts
 * const seen = await runTrace([app], [{ path: '/views' }, { path: '/views' }])
 * ```
 */
export async function runTrace(
  apps: App[],
  steps: Step[],
  options: TraceOptions = {},
): Promise<Seen[]> {
  const ids = new Map<string, string>()
  const alias = (id: string): string => {
    if (options.rawIds) return id
    if (!ids.has(id)) ids.set(id, `#${ids.size + 1}`)
    return ids.get(id)!
  }
  const jars: Array<Map<string, string>> = []
  let jar = new Map<string, string>()
  const seen: Seen[] = []

  for (const step of steps) {
    const held =
      step.cookieFrom === 'none'
        ? new Map()
        : step.cookieFrom === undefined
          ? jar
          : jars[step.cookieFrom]!
    let req = request(apps[step.app ?? 0] as never)[step.method ?? 'get'](step.path)
    if (held.size > 0) req = req.set('Cookie', [...held].map(([k, v]) => `${k}=${v}`).join('; '))
    for (const [k, v] of Object.entries(step.headers ?? {})) req = req.set(k, v)
    const res = await req

    jar = new Map(held)
    const cookies: SeenCookie[] = []
    for (const header of ([] as string[]).concat(res.headers['set-cookie'] ?? [])) {
      const parsed = parseSetCookie(header, alias, options)
      cookies.push(parsed.seen)
      if (parsed.seen.value === 'cleared') jar.delete(parsed.seen.name)
      else jar.set(parsed.seen.name, parsed.raw)
    }
    jars.push(jar)
    seen.push({ status: res.status, body: aliasIds(res.body, alias), cookies })
  }
  return seen
}

function parseSetCookie(
  header: string,
  alias: (id: string) => string,
  options: TraceOptions,
): { seen: SeenCookie; raw: string } {
  const [pair, ...rest] = header.split(';').map((part) => part.trim())
  const eq = pair!.indexOf('=')
  const name = pair!.slice(0, eq)
  const raw = pair!.slice(eq + 1)
  const attributes: Record<string, string | true> = {}
  let expired = false
  for (const part of rest) {
    const [key, value] = part.split('=') as [string, string | undefined]
    const lower = key.toLowerCase()
    if (lower === 'max-age') continue
    if (lower === 'expires') {
      const at = Date.parse(value!)
      expired = at <= Date.now()
      attributes.expires = options.exactExpires ? value! : expired ? 'past' : 'future'
    } else {
      attributes[lower] = value === undefined ? true : value.toLowerCase()
    }
  }
  const value = raw === '' || expired ? 'cleared' : alias(unsignedId(decodeURIComponent(raw)))
  return { seen: { name, value, attributes }, raw }
}

/** `s:<id>.<mac>` → `<id>`; the signature itself is checked by the implementations. */
function unsignedId(value: string): string {
  const body = value.startsWith('s:') ? value.slice(2) : value
  const dot = body.lastIndexOf('.')
  return dot === -1 ? body : body.slice(0, dot)
}

/** Replaces session ids in a response body (fields named `id`) with their aliases. */
function aliasIds(body: unknown, alias: (id: string) => string): unknown {
  if (typeof body !== 'object' || body === null) return body
  const copy: Record<string, unknown> = { ...(body as Record<string, unknown>) }
  if (typeof copy.id === 'string') copy.id = alias(copy.id)
  return copy
}
