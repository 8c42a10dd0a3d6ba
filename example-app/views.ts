/** The pages, rendered on the server. Every value goes through `html`, which escapes it. */
import { formatPrice, PRODUCTS, type Product } from './catalog.js'
import { FREE_SHIPPING_FROM, MAX_QTY, type CartSummary } from './cart.js'
import { html, type SafeHtml } from './html.js'

/** What the footer says about the session, for the visitor to see concord-session at work. */
export interface SessionPanel {
  /** The first characters of the session id: enough to see it change at sign-in. */
  idPrefix: string
  visits: number
  /** Epoch ms the session ends if idle; each request pushes it back. */
  idleExpiresAt: number
  idleTimeout: number
  /** Epoch ms the session ends however active it is, or null with no absolute timeout. */
  absoluteExpiresAt: number | null
  absoluteTimeout: number | undefined
  storeName: string
  now: number
  /** How often the id is renewed, e.g. "every 15 min"; undefined without renewal. */
  renewal?: string
}

/** What the header says about the visitor. */
export interface Visitor {
  /** The signed-in name, or undefined for a guest. */
  user: string | undefined
  /** Units in the cart. */
  cartCount: number
}

export interface Page {
  title: string
  active: 'shop' | 'cart' | 'sessions' | 'login' | 'none'
  /** Undefined when the session could not be read: the header then claims no name and no count. */
  visitor: Visitor | undefined
  flash: string | undefined
  panel: SessionPanel | undefined
}

export function layout(page: Page, body: SafeHtml): string {
  const { visitor } = page
  const nav = (key: Page['active'], href: string, label: SafeHtml | string) =>
    html`<a href="${href}"${page.active === key ? html` class="active" aria-current="page"` : ''}>${label}</a>`
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${page.title} · Corner Coffee &amp; Tea</title>
<style>${STYLE}</style>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<script src="/shop.js" defer></script>
</head>
<body data-pending="0">
<header class="top">
  <div class="wrap bar">
    <a class="brand" href="/">Corner Coffee &amp; Tea</a>
    <nav>
      ${nav('shop', '/', 'Shop')}
      ${nav('cart', '/cart', visitor ? html`Cart <span class="count" id="cart-count" data-testid="cart-count">${visitor.cartCount}</span>` : 'Cart')}
      ${visitor?.user ? nav('sessions', '/sessions', 'Your sessions') : ''}
    </nav>
    <div class="who">
      ${
        !visitor
          ? ''
          : visitor.user
            ? html`<span class="user"><span class="hint">Signed in as </span><strong data-testid="user">${visitor.user}</strong></span>
      <form method="post" action="/logout"><button class="link" type="submit">Sign out</button></form>`
            : nav('login', '/login', 'Sign in')
      }
    </div>
  </div>
</header>
<main class="wrap">
  ${page.flash ? html`<p class="flash" role="status">${page.flash}</p>` : ''}
  <p class="toast" id="toast" role="status" hidden></p>
  ${body}
</main>
${page.panel ? sessionPanel(page.panel) : ''}
</body>
</html>
`.value
}

function sessionPanel(p: SessionPanel): SafeHtml {
  return html`<footer class="wrap panel" aria-label="Session details">
  <h2>This session</h2>
  <dl>
    <div><dt>Visits</dt><dd data-testid="visits">${p.visits}</dd></div>
    <div><dt>Session id</dt><dd><code data-testid="session-id">${p.idPrefix}…</code> <small>new at every sign-in${p.renewal ? ` and ${p.renewal}` : ''}</small></dd></div>
    <div><dt>Idle expiry</dt><dd data-testid="idle-expiry">${relative(p.idleExpiresAt, p.now)} ${clock(p.idleExpiresAt)}
      <small>${duration(p.idleTimeout)} after your last request</small></dd></div>
    <div><dt>Absolute expiry</dt><dd data-testid="absolute-expiry">${
      p.absoluteExpiresAt === null
        ? 'none'
        : html`${relative(p.absoluteExpiresAt, p.now)} ${clock(p.absoluteExpiresAt)} <small>${duration(p.absoluteTimeout ?? 0)} after the session began, however active</small>`
    }</dd></div>
    <div><dt>Store</dt><dd data-testid="store">${p.storeName}</dd></div>
  </dl>
</footer>`
}

export function catalogPage(cartQty: ReadonlyMap<string, number>): SafeHtml {
  return html`<h1>Shop</h1>
<p class="lead">Fresh tea, coffee and the things to brew them with. Your cart lives in your session.</p>
<ul class="grid">
${PRODUCTS.map((p) => productCard(p, cartQty.get(p.id) ?? 0))}
</ul>`
}

function productCard(p: Product, inCart: number): SafeHtml {
  return html`<li class="card" data-product="${p.id}">
  <div class="tile" style="background:${p.color}" aria-hidden="true">${p.badge}</div>
  <h3>${p.name}</h3>
  <p class="muted">${p.description}</p>
  <div class="buy">
    <span class="price">${formatPrice(p.price)}</span>
    <form method="post" action="/cart/add" data-add>
      <input type="hidden" name="productId" value="${p.id}">
      <input type="hidden" name="back" value="/">
      <button type="submit" data-testid="add-${p.id}">Add to cart</button>
    </form>
  </div>
  <p class="incart muted" data-testid="in-cart-${p.id}">${inCart > 0 ? `${inCart} in your cart` : ''}</p>
</li>`
}

export function cartPage(cart: CartSummary): SafeHtml {
  if (cart.items.length === 0) {
    return html`<h1>Your cart</h1>
<div class="empty" data-testid="cart-empty"><p>Your cart is empty.</p><p><a class="button" href="/">Browse the shop</a></p></div>`
  }
  const toFree = FREE_SHIPPING_FROM - cart.subtotal
  return html`<h1>Your cart</h1>
<table class="cart">
  <thead><tr><th>Product</th><th class="num">Price</th><th>Quantity</th><th class="num">Total</th><th><span class="sr">Remove</span></th></tr></thead>
  <tbody>
  ${cart.items.map(
    (item) => html`<tr data-testid="line-${item.product.id}">
    <td class="item"><span class="dot" style="background:${item.product.color}"></span>${item.product.name} <small class="muted">${item.product.description}</small></td>
    <td class="num each">${formatPrice(item.product.price)}</td>
    <td class="change">
      <form method="post" action="/cart/update" class="qty">
        <input type="hidden" name="productId" value="${item.product.id}">
        <label class="sr" for="qty-${item.product.id}">Quantity of ${item.product.name}</label>
        <input id="qty-${item.product.id}" type="number" name="quantity" min="0" max="${MAX_QTY}" value="${item.qty}" data-testid="qty-${item.product.id}">
        <button type="submit" class="small">Update</button>
      </form>
    </td>
    <td class="num line-total" data-testid="line-total-${item.product.id}">${formatPrice(item.lineTotal)}</td>
    <td class="remove">
      <form method="post" action="/cart/remove">
        <input type="hidden" name="productId" value="${item.product.id}">
        <button type="submit" class="link" data-testid="remove-${item.product.id}">Remove</button>
      </form>
    </td>
  </tr>`,
  )}
  </tbody>
  <tfoot>
    <tr><td colspan="3">Subtotal (${cart.count} ${cart.count === 1 ? 'item' : 'items'})</td><td class="num" data-testid="subtotal">${formatPrice(cart.subtotal)}</td><td></td></tr>
    <tr><td colspan="3">Shipping ${toFree > 0 ? html`<small class="muted">free from ${formatPrice(FREE_SHIPPING_FROM)}: add ${formatPrice(toFree)} more</small>` : ''}</td>
      <td class="num" data-testid="shipping">${cart.shipping === 0 ? 'Free' : formatPrice(cart.shipping)}</td><td></td></tr>
    <tr class="total"><td colspan="3">Total</td><td class="num" data-testid="total">${formatPrice(cart.total)}</td><td></td></tr>
  </tfoot>
</table>
<p class="actions"><a href="/">Keep shopping</a> <button type="button" disabled title="This is a demo shop">Check out</button></p>`
}

export function loginPage(options: {
  error?: string
  name?: string
  signedOut?: number
}): SafeHtml {
  return html`<h1>Sign in</h1>
${
  options.signedOut !== undefined
    ? html`<p class="flash" role="status" data-testid="signed-out">Signed out everywhere: ${options.signedOut} ${options.signedOut === 1 ? 'session' : 'sessions'} ended.</p>`
    : ''
}
<form method="post" action="/login" class="login">
  <p class="note">This is a demo: there are no passwords. Any name signs you in, and the cart you
  filled as a guest comes with you (the session gets a new id, its data is kept).</p>
  <label for="username">Name</label>
  <input id="username" name="username" autocomplete="username" maxlength="40" required value="${options.name ?? ''}">
  ${options.error ? html`<p class="error" role="alert">${options.error}</p>` : ''}
  <button type="submit">Sign in</button>
</form>`
}

export interface SessionRow {
  current: boolean
  device: string
  signedInAt: number | undefined
  lastActiveAt: number
  expiresAt: number
  absoluteExpiresAt: number | null
}

export function sessionsPage(
  user: string,
  rows: SessionRow[] | null,
  now: number,
  maxDevices?: number,
): SafeHtml {
  if (rows === null) {
    return html`<h1>Your sessions</h1><p>This session store keeps no per-user index, so it cannot list your sessions.</p>`
  }
  return html`<h1>Your sessions</h1>
<p class="lead">Where <strong>${user}</strong> is signed in right now: ${rows.length} ${rows.length === 1 ? 'session' : 'sessions'}.</p>
${maxDevices === undefined ? '' : deviceLimitNote(maxDevices)}
<table class="sessions" data-testid="sessions">
  <thead><tr><th>Device</th><th>Signed in</th><th>Last active</th><th>Ends if idle</th><th>Ends at the latest</th></tr></thead>
  <tbody>
  ${rows.map(
    (row) => html`<tr${row.current ? html` class="current"` : ''} data-testid="session-row">
    <td class="device">${row.device}${row.current ? html` <span class="tag">this device</span>` : ''}</td>
    <td data-label="Signed in">${row.signedInAt === undefined ? '—' : html`${relative(row.signedInAt, now)} ${clock(row.signedInAt)}`}</td>
    <td data-label="Last active">${relative(row.lastActiveAt, now)}</td>
    <td data-label="Ends if idle">${relative(row.expiresAt, now)} ${clock(row.expiresAt)}</td>
    <td data-label="Ends at the latest">${row.absoluteExpiresAt === null ? 'never' : html`${relative(row.absoluteExpiresAt, now)} ${clock(row.absoluteExpiresAt)}`}</td>
  </tr>`,
  )}
  </tbody>
</table>
<form method="post" action="/sessions/sign-out-everywhere" class="danger">
  <p>Lost a device, or signed in somewhere you shouldn't have? This ends every session above, this one included.</p>
  <button type="submit" class="warn" data-testid="sign-out-everywhere">Sign out everywhere</button>
</form>`
}

/** The device limit, in words: how many stay signed in and what one more sign-in does. */
function deviceLimitNote(max: number): SafeHtml {
  const devices = max === 1 ? '1 device stays' : `${max} devices stay`
  return html`<p class="limit" data-testid="device-limit">At most <strong>${devices}</strong> signed in at once. Signing in on another device signs out the one that signed in longest ago.</p>`
}

export function errorPage(message: string): SafeHtml {
  return html`<h1>Sorry</h1><p class="error" role="alert">${message}</p><p><a href="/">Back to the shop</a></p>`
}

/** "in 29 min", "3 min ago", "just now" */
export function relative(at: number, now: number): string {
  const ms = at - now
  if (Math.abs(ms) < 5000) return 'just now'
  return ms > 0 ? `in ${duration(ms)}` : `${duration(-ms)} ago`
}

/** 45_000 -> "45 s", 1_800_000 -> "30 min", 28_800_000 -> "8 h" */
export function duration(ms: number): string {
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s} s`
  const min = Math.round(s / 60)
  if (min < 60) return `${min} min`
  const h = Math.floor(min / 60)
  const rest = min % 60
  if (h < 48) return rest === 0 ? `${h} h` : `${h} h ${rest} min`
  return `${Math.round(h / 24)} days`
}

/** A <time> in UTC; shop.js rewrites it in the visitor's time zone. */
function clock(at: number): SafeHtml {
  const iso = new Date(at).toISOString()
  return html`<time datetime="${iso}">(${iso.slice(11, 16)} UTC)</time>`
}

const STYLE = html`
:root { --ink: #1f2328; --muted: #656d76; --line: #d8dee4; --bg: #f6f4f0; --card: #fff; --accent: #2f6f4f; --warn: #b42318; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "Liberation Sans", Arial, sans-serif; color: var(--ink); background: var(--bg); overflow-wrap: break-word; }
.wrap { max-width: 960px; margin: 0 auto; padding: 0 20px; }
.top { background: #23352b; color: #fff; }
.bar { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 24px; min-height: 56px; padding-top: 8px; padding-bottom: 8px; }
.brand { color: #fff; font-weight: 700; text-decoration: none; font-size: 17px; letter-spacing: .2px; }
nav { display: flex; gap: 4px; flex: 1; }
nav a, .who a { color: #d7e5dc; text-decoration: none; padding: 6px 10px; border-radius: 6px; }
nav a:hover, nav a.active, .who a.active { background: rgba(255,255,255,.12); color: #fff; }
.who { display: flex; align-items: center; gap: 10px; margin-left: auto; color: #d7e5dc; white-space: nowrap; }
.who .user { white-space: normal; overflow-wrap: anywhere; }
.who form { margin: 0; }
.who .link { color: #d7e5dc; }
.count { display: inline-block; min-width: 22px; padding: 0 6px; border-radius: 11px; background: #e9c46a; color: #23352b; font-size: 12px; font-weight: 700; text-align: center; }
h1 { font-size: 26px; margin: 28px 0 6px; }
.lead { color: var(--muted); margin: 0 0 20px; }
.muted { color: var(--muted); }
.grid { list-style: none; padding: 0; margin: 0; display: grid; grid-template-columns: repeat(3, 1fr); gap: 16px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 16px; }
.card h3 { margin: 10px 0 0; font-size: 16px; }
.card p { margin: 2px 0 0; }
.tile { height: 84px; border-radius: 8px; color: rgba(255,255,255,.92); font: 700 30px/84px Georgia, serif; text-align: center; }
.buy { display: flex; align-items: center; justify-content: space-between; margin-top: 12px; }
.buy form { margin: 0; }
.price { font-weight: 700; font-size: 16px; }
.incart { min-height: 1.5em; font-size: 13px; }
button, .button { font: inherit; background: var(--accent); color: #fff; border: 0; border-radius: 6px; padding: 7px 14px; cursor: pointer; text-decoration: none; display: inline-block; }
button:hover, .button:hover { filter: brightness(1.1); }
button:disabled { background: #9aa5ad; cursor: not-allowed; }
button.small { padding: 4px 10px; font-size: 13px; }
button.link { background: none; color: var(--accent); padding: 0; text-decoration: underline; }
button.warn { background: var(--warn); }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 10px; overflow: hidden; }
th, td { padding: 10px 14px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: middle; }
th { font-size: 13px; color: var(--muted); font-weight: 600; background: #fbfaf8; white-space: nowrap; }
time { white-space: nowrap; color: var(--muted); font-weight: 400; }
a { color: var(--accent); }
.num { text-align: right; white-space: nowrap; }
tfoot td { border-bottom: 0; padding-top: 6px; padding-bottom: 6px; }
tfoot tr:first-child td { padding-top: 14px; }
tr.total td { font-weight: 700; font-size: 17px; padding-bottom: 14px; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 8px; }
.qty { display: flex; gap: 6px; align-items: center; margin: 0; }
.qty input { width: 64px; padding: 4px 6px; font: inherit; border: 1px solid var(--line); border-radius: 6px; }
.actions { display: flex; justify-content: space-between; align-items: center; margin-top: 16px; }
.empty { background: var(--card); border: 1px dashed var(--line); border-radius: 10px; padding: 24px; text-align: center; }
.flash, .toast { background: #e6f2ea; border: 1px solid #b7d7c2; border-radius: 8px; padding: 10px 14px; margin: 18px 0 0; }
.toast { position: fixed; right: 20px; bottom: 20px; margin: 0; box-shadow: 0 4px 14px rgba(0,0,0,.12); }
.error { color: var(--warn); }
.login { max-width: 420px; background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 20px; }
.login label { display: block; font-weight: 600; margin-bottom: 4px; }
.login input { width: 100%; font: inherit; padding: 8px 10px; border: 1px solid var(--line); border-radius: 6px; margin-bottom: 12px; }
.note { background: #fff8e1; border: 1px solid #f0dca0; border-radius: 8px; padding: 8px 12px; margin: 0 0 14px; font-size: 14px; }
.sessions tr.current td { background: #f3f8f5; }
.tag { white-space: nowrap; font-size: 12px; background: var(--accent); color: #fff; border-radius: 10px; padding: 1px 8px; margin-left: 6px; }
.limit { background: #fdf8ec; border: 1px solid #ecd9a6; border-radius: 8px; padding: 10px 14px; margin: 0 0 20px; }
.danger { margin-top: 20px; background: #fff5f4; border: 1px solid #f3c9c4; border-radius: 10px; padding: 14px 16px; }
.danger p { margin: 0 0 10px; }
.panel { margin-top: 36px; margin-bottom: 30px; }
.panel h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .6px; color: var(--muted); margin: 0 0 8px; }
.panel dl { margin: 0; display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 10px; }
.panel dl div { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; }
.panel dt { font-size: 12px; color: var(--muted); }
.panel dd { margin: 0; font-weight: 600; }
.panel small, td small { font-weight: 400; color: var(--muted); display: block; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
@media (max-width: 720px) { .grid { grid-template-columns: 1fr 1fr; } .bar { gap: 10px; } }

/* Narrow screens: the header stacks (brand and account on top, the links under them). */
@media (max-width: 760px) {
  .bar { gap: 2px 12px; padding-bottom: 6px; }
  .brand { flex: 1 1 auto; padding: 4px 0; }
  .who .hint { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  nav { order: 1; flex: 1 0 100%; margin-left: -10px; }
  nav a { white-space: nowrap; }
}

/* Phones: tables become one card per row, so nothing needs sideways scrolling. */
@media (max-width: 640px) {
  .wrap { padding: 0 16px; }
  .grid { gap: 10px; }
  .card { padding: 12px; }
  .buy { flex-wrap: wrap; gap: 8px; }
  .toast { left: 16px; right: 16px; bottom: 16px; }
  table, tbody, tfoot, tr, td { display: block; }
  thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  td { border-bottom: 0; padding: 0; }
  tbody tr { border-bottom: 1px solid var(--line); padding: 12px 14px; }
  /* Name and Remove on the first line, then price, quantity and line total; the total wraps
     below on the narrowest screens. */
  .cart tbody tr { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 10px; }
  .cart td.item { flex: 1 1 calc(100% - 7em); }
  .cart td.remove { order: 1; align-self: flex-start; margin-left: auto; }
  .cart td.each { order: 2; flex: 1 0 auto; text-align: left; }
  .cart td.each::after { content: " each"; color: var(--muted); font-size: 13px; }
  .cart td.change { order: 3; }
  .cart td.line-total { order: 4; min-width: 4.5em; margin-left: auto; font-weight: 600; }
  .cart tfoot tr { display: flex; justify-content: space-between; gap: 12px; padding: 4px 14px; }
  .cart tfoot tr:first-child { padding-top: 12px; }
  .cart tfoot tr.total { padding-bottom: 12px; }
  .cart tfoot td { padding: 0; }
  .cart tfoot td:empty { display: none; }
  .sessions td { padding: 2px 0; }
  .sessions td[data-label] { text-align: right; }
  .sessions td[data-label]::before { content: attr(data-label); float: left; margin-right: 12px; color: var(--muted); font-size: 13px; line-height: 22.5px; }
  .sessions tbody tr:last-child { border-bottom: 0; }
  .sessions td.device { font-weight: 600; padding-bottom: 4px; }
  .sessions tr.current, .sessions tr.current td { background: #f3f8f5; }
}
`
