/**
 * The shopping-cart app every lifecycle measurement drives, and the middleware it runs under.
 */
import session, { type Store } from '../entries/index.js'
import { drive, sessionCookie, type Handler, type Mw } from './fake-http.js'
import { MAX_AGE_MS, SECRET } from './systems.js'

export const POOL_SESSIONS = 256
export const IN_FLIGHT = 16
export const SKUS = ['sku-a', 'sku-b', 'sku-c', 'sku-d', 'sku-e', 'sku-f', 'sku-g', 'sku-h']

export interface CartSession {
  id: string
  user?: string
  cart?: { items: Record<string, number> }
  destroy(): Promise<void>
}

export const login: Handler = (req, res) => {
  const s = req.session as CartSession
  s.user = 'user-1'
  s.cart = { items: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`sku-${i}`, 1])) }
  res.end(JSON.stringify({ id: s.id }))
}

export const readCart: Handler = (req, res) => {
  const s = req.session as CartSession
  // A session lost mid-run would make reads cheap for the wrong reason: stop instead.
  if (s.user === undefined) throw new Error('bench: the session was lost during the reads')
  res.end(JSON.stringify({ user: s.user, items: s.cart?.items ?? {} }))
}

export const addItem: Handler = (req, res) => {
  const s = req.session as CartSession
  const cart = (s.cart ??= { items: {} })
  const item = String(req.url).slice('/cart/add/'.length)
  cart.items[item] = (cart.items[item] ?? 0) + 1
  res.end(JSON.stringify({ count: Object.keys(cart.items).length }))
}

export const logout: Handler = async (req, res) => {
  await (req.session as CartSession).destroy()
  res.end('{}')
}

export async function signIn(mw: Mw): Promise<{ cookie: string; id: string }> {
  const res = await drive(mw, login, '/login', undefined, 'POST')
  return { cookie: sessionCookie(res), id: (JSON.parse(String(res.body)) as { id: string }).id }
}

export function concord(store: Store, touchAfter: number | undefined): Mw {
  return session(store, { secret: SECRET, cookie: { maxAge: MAX_AGE_MS }, touchAfter }) as Mw
}

export function required(value: string | undefined, name: string): string {
  if (!value) throw new Error(`bench lifecycle: ${name} is required for this job`)
  return value
}
