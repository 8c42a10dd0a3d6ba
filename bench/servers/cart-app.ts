/**
 * The cart app every system serves. Only the session middleware differs between systems, so
 * the handlers use nothing beyond what express-session and concord-session both offer.
 */
import express, { type Request, type Response } from 'express'
import type { Middleware } from '../peers.js'

interface Cart {
  items: Record<string, number>
}

/** The part of req.session the app touches; both middlewares provide it. */
interface CartSession {
  cart?: Cart
  user?: string
  destroy?(callback: (err?: unknown) => void): unknown
}

export function cartApp(session: Middleware | undefined): express.Express {
  const app = express()
  app.disable('x-powered-by')
  app.disable('etag')
  if (session) app.use(session)

  // Without a session middleware (the ceiling) each request gets a throwaway object, so the
  // handlers do the same work either way.
  const sessionOf = (req: Request): CartSession =>
    (req as unknown as { session?: CartSession }).session ?? {}

  app.get('/cart', (req, res) => {
    const s = sessionOf(req)
    res.json({ user: s.user ?? null, items: s.cart?.items ?? {} })
  })

  // Logs in; `?items=n` also restores a saved cart of n items (one request per pooled session).
  app.post('/login', (req, res) => {
    const s = sessionOf(req)
    s.user = `user-${req.query.u ?? '1'}`
    const items = Number(req.query.items ?? 0)
    if (items > 0)
      s.cart = {
        items: Object.fromEntries(Array.from({ length: items }, (_, i) => [`sku-${i}`, 1])),
      }
    res.json({ ok: true })
  })

  app.post('/cart/add/:item', (req, res) => {
    addItem(sessionOf(req), req.params.item!, res)
  })

  // A slow write: the session is loaded first, changed after `ms`. The logout race needs it.
  app.post('/cart/add-slow/:item', (req, res) => {
    const s = sessionOf(req)
    setTimeout(() => addItem(s, req.params.item!, res), Number(req.query.ms ?? 200))
  })

  app.post('/logout', (req, res, next) => {
    const s = sessionOf(req)
    if (!s.destroy) return void res.json({ ok: true })
    s.destroy((err) => (err ? next(err) : res.json({ ok: true })))
  })

  return app
}

function addItem(s: CartSession, item: string, res: Response): void {
  const cart = (s.cart ??= { items: {} })
  cart.items[item] = (cart.items[item] ?? 0) + 1
  res.json({ count: Object.keys(cart.items).length })
}
