/**
 * The shop: an Express app whose cart, sign-in and visit counter live in a concord-session.
 * `createApp({ store, secret })` builds it; server.ts picks the store from the environment
 * and listens. Tests start it on a free port with any store.
 */
import { join } from 'node:path'
import express, { type NextFunction, type Request, type Response } from 'express'
import session, {
  deriveIdHashKey,
  hashSessionId,
  isUserIndex,
  Session,
  sessionInfo,
  StoreError,
  type SessionEvent,
  type Store,
} from '../entries/index.js'
import { auditLine } from './audit.js'
import {
  cookieSessionId,
  DEFAULT_MAX_DEVICES,
  DEFAULT_RENEW,
  deviceLimitFor,
  EvictionNotices,
  renewalFor,
  describeRenewal,
  type ShopRenew,
} from './lifecycle.js'
import { PRODUCTS } from './catalog.js'
import {
  addToCart,
  CartError,
  emptyCart,
  isShopCart,
  quantityOf,
  removeFromCart,
  setQuantity,
  summarize,
  type ShopCart,
} from './cart.js'
import type { SafeHtml } from './html.js'
import {
  cartPage,
  catalogPage,
  duration,
  errorPage,
  layout,
  loginPage,
  sessionsPage,
  type Page,
  type SessionPanel,
  type SessionRow,
  type Visitor,
} from './views.js'

// Typed session data. The names carry a `shop` prefix so they never clash with other code
// that augments SessionData in the same program (from outside this repository the module to
// augment is 'concord-session').
declare module '../lib/session.js' {
  interface SessionData {
    shopCart: ShopCart
    shopVisits: number
    shopUser: { id: string; name: string; signedInAt: number }
    shopDevice: string
    shopFlash: string
  }
}

export interface ShopOptions {
  /** Any concord-session store: MemoryStore, FileStore, RedisStore. */
  store: Store
  /** Signs the session cookie; an array rotates secrets. */
  secret: string | string[]
  /** Shown in the page footer, e.g. "memory". Default "custom". */
  storeName?: string
  /** Idle timeout in ms: the cookie's maxAge, restarted by every request (rolling). Default 30 min. */
  idleTimeout?: number
  /** Absolute timeout in ms from the session's creation. Default 8 h. */
  absoluteTimeout?: number
  /** Cookie name. Default "shop.sid". */
  cookieName?: string
  /** Gets one line per session lifecycle event (created, destroyed, expired…). Default none. */
  auditLog?: (line: string) => void
  /**
   * Periodic id renewal, or false for none. Default every 15 min with a 30 s grace. Turned off,
   * with a line to `log`, on a store that cannot renew ids.
   */
  renew?: ShopRenew | false
  /**
   * Devices one user stays signed in on; a sign-in past it signs out the oldest. False for no
   * limit. Default 3. Turned off, with a line to `log`, on a store that cannot enforce it.
   */
  maxDevices?: number | false
  /** Gets the set-up notices (a feature the store cannot do). Default console.warn. */
  log?: (line: string) => void
}

const MINUTE = 60_000
const BACK_TO = new Set(['/', '/cart'])
const USERNAME_MAX = 40

export function createApp(options: ShopOptions): express.Express {
  const {
    store,
    secret,
    storeName = 'custom',
    idleTimeout = 30 * MINUTE,
    absoluteTimeout = 8 * 60 * MINUTE,
    cookieName = 'shop.sid',
    auditLog,
    log = (line: string) => console.warn(line),
  } = options
  const renew = renewalFor(store, options.renew ?? DEFAULT_RENEW, log)
  const maxDevices = deviceLimitFor(store, options.maxDevices ?? DEFAULT_MAX_DEVICES, log)
  // Devices the limit signed out, to tell them so on their next page.
  const evicted = new EvictionNotices(idleTimeout)
  const secrets = typeof secret === 'string' ? [secret] : secret
  const renewal = renew && describeRenewal(renew, duration)
  const app = express()
  app.disable('x-powered-by')

  app.use((_req, res, next) => {
    res.set({
      'Content-Security-Policy':
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'same-origin',
    })
    next()
  })
  // The script is served before the session middleware, so fetching it never touches a session.
  app.use(express.static(join(__dirname, 'public'), { index: false, maxAge: 0 }))

  // Rolling: every response restarts the cookie's maxAge, so maxAge is the idle timeout.
  // SameSite=Lax (the default) keeps other sites from posting the shop's forms with the cookie.
  app.use(
    session(store, {
      secret,
      name: cookieName,
      cookie: { maxAge: idleTimeout },
      rolling: true,
      absoluteTimeout,
      renew,
      maxSessionsPerUser: maxDevices,
      onEvent: auditLog && ((event: SessionEvent) => auditLog(auditLine(event))),
    }),
  )
  // The header as the store holds it, for an error page after a failed request (which saves nothing).
  const loaded = new WeakMap<Request, Visitor>()
  app.use((req, _res, next) => {
    const visitor = visitorOf(req)
    if (visitor) loaded.set(req, visitor)
    next()
  })
  // A cookie whose session the device limit ended: say so once, on this device's next page.
  app.use((req, _res, next) => {
    if (evicted.size === 0 || !(req.session instanceof Session) || req.session.shopUser)
      return next()
    const id = cookieSessionId(req.headers.cookie, cookieName, secrets)
    // The limit names sessions by their stored id: the keyed hash the store keeps them under.
    const stored = id && hashSessionId(id, deriveIdHashKey(secrets[0]!))
    if (id && stored && id !== req.session.id && evicted.take(stored, Date.now()))
      req.session.shopFlash = signedOutByLimit(maxDevices ?? 0)
    next()
  })
  app.use(express.urlencoded({ extended: false, limit: '10kb' }))
  app.use(express.json({ limit: '10kb' }))

  /**
   * Renders a page with the header and the session panel. A page the visitor asked for counts
   * as a visit; a 404 (a stray /favicon.ico, a bot) writes nothing to the session.
   */
  async function render(
    req: Request,
    res: Response,
    page: Pick<Page, 'title' | 'active'>,
    body: SafeHtml,
    { status = 200, visit = true }: { status?: number; visit?: boolean } = {},
  ) {
    const s = req.session
    let flash: string | undefined
    if (visit) {
      s.shopCart = isShopCart(s.shopCart) ? s.shopCart : emptyCart() // exists before any add, so parallel adds merge
      s.shopVisits = (typeof s.shopVisits === 'number' ? s.shopVisits : 0) + 1
      flash = s.shopFlash
      delete s.shopFlash
    }

    res
      .status(status)
      .type('html')
      .send(
        layout(
          {
            ...page,
            visitor: visitorOf(req),
            flash,
            panel: visit ? sessionPanel(s) : undefined,
          },
          body,
        ),
      )
  }

  function sessionPanel(s: Request['session']): SessionPanel {
    const now = Date.now()
    // Read from the session itself: no extra store call for the footer.
    const { idleExpiresAt, absoluteExpiresAt } = sessionInfo(s, now)
    return {
      idPrefix: s.id.slice(0, 8),
      visits: s.shopVisits ?? 0,
      idleExpiresAt,
      idleTimeout,
      absoluteExpiresAt,
      absoluteTimeout,
      storeName,
      now,
      renewal,
    }
  }

  app.get('/', async (req, res) => {
    const cart = currentCart(req)
    const inCart = new Map(PRODUCTS.map((p) => [p.id, quantityOf(cart, p.id)]))
    await render(req, res, { title: 'Shop', active: 'shop' }, catalogPage(inCart))
  })

  app.get('/cart', async (req, res) => {
    await render(req, res, { title: 'Cart', active: 'cart' }, cartPage(summarize(currentCart(req))))
  })

  app.post('/cart/add', (req, res) => {
    const product = addToCart(currentCart(req), req.body?.productId, 1)
    req.session.shopFlash = `Added ${product.name} to your cart.`
    res.redirect(303, BACK_TO.has(req.body?.back) ? req.body.back : '/cart')
  })

  app.post('/cart/update', (req, res) => {
    const product = setQuantity(
      currentCart(req),
      req.body?.productId,
      parseQuantity(req.body?.quantity),
    )
    req.session.shopFlash = `Updated ${product.name}.`
    res.redirect(303, '/cart')
  })

  app.post('/cart/remove', (req, res) => {
    const product = removeFromCart(currentCart(req), req.body?.productId)
    req.session.shopFlash = `Removed ${product.name}.`
    res.redirect(303, '/cart')
  })

  // The page's script adds through here with fetch(), so several adds can be in flight at once.
  app.get('/api/cart', (req, res) => {
    const cart = req.session.shopCart
    res.json(cartJson(isShopCart(cart) ? cart : emptyCart())) // reading writes nothing
  })

  app.post('/api/cart/add', async (req, res) => {
    if (!req.is('application/json')) throw new CartError('Send JSON: {"productId": "..."}')
    const product = addToCart(currentCart(req), req.body?.productId, 1)
    // Save now: if another request saved meanwhile, its changes are merged in and the session
    // holds the merged cart, so the count sent back includes them.
    await req.session.save()
    res.json({ added: product.id, ...cartJson(currentCart(req)) })
  })

  app.get('/login', async (req, res) => {
    if (req.session.shopUser) return res.redirect(303, '/sessions')
    const signedOut =
      typeof req.query['signedOut'] === 'string' ? Number.parseInt(req.query['signedOut'], 10) : NaN
    await render(
      req,
      res,
      { title: 'Sign in', active: 'login' },
      loginPage(Number.isInteger(signedOut) && signedOut >= 0 ? { signedOut } : {}),
    )
  })

  app.post('/login', async (req, res) => {
    const name = typeof req.body?.username === 'string' ? req.body.username.trim() : ''
    const problem = usernameProblem(name)
    if (problem) {
      return render(
        req,
        res,
        { title: 'Sign in', active: 'login' },
        loginPage({ error: problem, name: name.slice(0, USERNAME_MAX) }),
        { status: 400 },
      )
    }
    // A new session id, so an id planted before sign-in is worthless after it; the cart comes along.
    // Ended by the regenerate, not by the limit; as listByUser names it, by its stored id.
    const previousId = sessionInfo(req.session).storedId
    await req.session.regenerate({ keepData: true })
    const userId = name.toLowerCase()
    // At the limit, this sign-in signs the oldest device out: note who is signed in before.
    const before =
      maxDevices !== undefined && isUserIndex(store) ? await store.listByUser(userId) : []
    req.session.setUser(userId) // indexes the session under the user, for listByUser/destroyByUser
    req.session.shopUser = { id: userId, name, signedInAt: Date.now() }
    req.session.shopDevice = describeDevice(req.get('user-agent'))
    req.session.shopFlash = `Welcome, ${name}. Your cart came with you.`
    if (maxDevices !== undefined && isUserIndex(store) && before.length >= maxDevices) {
      await req.session.save() // the store applies the limit here
      const after = new Set(await store.listByUser(userId))
      const now = Date.now()
      for (const id of before) if (id !== previousId && !after.has(id)) evicted.add(id, now)
    }
    res.redirect(303, '/')
  })

  app.post('/logout', async (req, res) => {
    await req.session.destroy() // removes it from the store and clears the cookie
    res.redirect(303, '/')
  })

  app.get('/sessions', async (req, res) => {
    const user = req.session.shopUser
    if (!user) return res.redirect(303, '/login')
    const now = Date.now()
    let rows: SessionRow[] | null = null
    if (isUserIndex(store)) {
      // Stored ids: the keyed hashes the store keys sessions by, never ids a cookie could carry.
      const ids = await store.listByUser(user.id)
      const { storedId } = sessionInfo(req.session)
      const records = await Promise.all(
        ids.map(async (id) => ({ id, record: await store.load(id) })),
      )
      rows = []
      for (const { id, record } of records) {
        if (!record) continue // ended between the two calls
        const owner = parseStored(record.data['shopUser']) as { signedInAt?: unknown } | undefined
        const device = parseStored(record.data['shopDevice'])
        rows.push({
          current: id === storedId,
          device: typeof device === 'string' ? device : 'Unknown device',
          signedInAt: typeof owner?.signedInAt === 'number' ? owner.signedInAt : undefined,
          lastActiveAt: record.expiresAt - record.idleTimeout,
          expiresAt: record.expiresAt,
          absoluteExpiresAt: record.createdAt + absoluteTimeout,
        })
      }
      rows.sort(
        (a, b) =>
          Number(b.current) - Number(a.current) || (a.signedInAt ?? 0) - (b.signedInAt ?? 0),
      )
    }
    await render(
      req,
      res,
      { title: 'Your sessions', active: 'sessions' },
      sessionsPage(user.name, rows, now, maxDevices),
    )
  })

  app.post('/sessions/sign-out-everywhere', async (req, res) => {
    const user = req.session.shopUser
    if (!user) return res.redirect(303, '/login')
    if (!isUserIndex(store))
      throw new CartError('This session store cannot sign a user out everywhere')
    const ended = await store.destroyByUser(user.id)
    await req.session.destroy() // this one is gone from the store already; this clears its cookie
    res.redirect(303, `/login?signedOut=${ended}`)
  })

  app.use(async (req: Request, res: Response) => {
    await render(
      req,
      res,
      { title: 'Not found', active: 'none' },
      errorPage('There is no such page.'),
      { status: 404, visit: false },
    )
  })

  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err)
    const [status, message] =
      err instanceof CartError
        ? [400, err.message]
        : err instanceof StoreError
          ? [503, 'The session store is not answering. Please try again in a moment.']
          : isBodyError(err)
            ? [400, 'That request could not be read.']
            : [500, 'Something went wrong on our side.']
    if (err instanceof StoreError)
      console.error(`503: ${err.message}`) // the store is down: one line, not a stack per request
    else if (status >= 500) console.error(err)
    if (req.path.startsWith('/api/')) return res.status(status).json({ error: message })
    // A plain page: the session may be what failed, so this only reads it. A 4xx saves the
    // session as it is now, so the header shows that; after a 5xx nothing is saved, so it shows
    // the session as loaded. With no session (the store failed to load it) it claims nothing.
    const visitor = status >= 500 ? loaded.get(req) : visitorOf(req)
    res
      .status(status)
      .type('html')
      .send(
        layout(
          { title: 'Error', active: 'none', visitor, flash: undefined, panel: undefined },
          errorPage(message),
        ),
      )
  })

  return app
}

/** What a device signed out by the device limit sees on its next page. */
export function signedOutByLimit(maxDevices: number): string {
  return (
    `You were signed out on this device because you signed in on another one: ` +
    `at most ${maxDevices} ${maxDevices === 1 ? 'device stays' : 'devices stay'} signed in.`
  )
}

/** The signed-in name and cart count of the request's session; undefined without a session. */
function visitorOf(req: Request): Visitor | undefined {
  const s: unknown = req.session
  if (!(s instanceof Session)) return undefined // the store failed to load it, or it was destroyed
  const { shopUser, shopCart } = s as Request['session']
  return {
    user: shopUser?.name,
    cartCount: summarize(isShopCart(shopCart) ? shopCart : undefined).count,
  }
}

/** The session's cart, created if missing or unreadable. */
function currentCart(req: Request): ShopCart {
  if (!isShopCart(req.session.shopCart)) req.session.shopCart = emptyCart()
  return req.session.shopCart
}

function cartJson(cart: ShopCart) {
  const summary = summarize(cart)
  return {
    count: summary.count,
    total: summary.total,
    items: summary.items.map((item) => ({ productId: item.product.id, qty: item.qty })),
  }
}

function parseQuantity(value: unknown): number {
  const qty =
    typeof value === 'string' && /^\d{1,3}$/.test(value.trim()) ? Number(value.trim()) : NaN
  if (!Number.isInteger(qty)) throw new CartError('Quantity must be a whole number')
  return qty
}

function usernameProblem(name: string): string | undefined {
  if (name.length === 0) return 'Type a name to sign in.'
  if (name.length > USERNAME_MAX) return `A name has at most ${USERNAME_MAX} characters.`
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'A name cannot contain control characters.'
  return undefined
}

const BROWSERS: ReadonlyArray<[RegExp, string]> = [
  [/Edg\//, 'Edge'],
  [/Firefox\//, 'Firefox'],
  [/HeadlessChrome\//, 'Headless Chrome'],
  [/Chrom(e|ium)\//, 'Chrome'],
  [/Safari\//, 'Safari'],
  [/curl\//, 'curl'],
]
const SYSTEMS: ReadonlyArray<[RegExp, string]> = [
  [/Android/, 'Android'],
  [/iPhone|iPad/, 'iOS'],
  [/Windows/, 'Windows'],
  [/Mac OS X/, 'macOS'],
  [/Linux/, 'Linux'],
]

/** "Chrome on Linux": enough to tell one's devices apart on the sessions page. */
export function describeDevice(userAgent: string | undefined): string {
  const ua = userAgent ?? ''
  const browser = BROWSERS.find(([re]) => re.test(ua))?.[1] ?? 'Unknown browser'
  const os = SYSTEMS.find(([re]) => re.test(ua))?.[1]
  return os ? `${browser} on ${os}` : browser
}

function parseStored(text: string | undefined): unknown {
  if (text === undefined) return undefined
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

function isBodyError(err: unknown): boolean {
  const type = (err as { type?: unknown } | null)?.type
  return (
    typeof type === 'string' &&
    (type === 'entity.parse.failed' || type === 'entity.too.large' || type.startsWith('encoding.'))
  )
}
