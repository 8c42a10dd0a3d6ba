/**
 * The cart kept in the session.
 *
 * Every "add" writes a new line under a fresh random key instead of incrementing a counter.
 * concord-session replays concurrent saves at path level: two requests that write different
 * paths both survive, two that write the same path end with the later write. So two "add"
 * clicks racing each other (even for the same product) write different keys, and both count.
 * Changing a quantity or removing a product folds that product's lines into one (or none).
 */
import { randomBytes } from 'node:crypto'
import { findProduct, PRODUCTS, type Product } from './catalog.js'

export interface CartLine {
  productId: string
  qty: number
}

/** Stored as `req.session.shopCart`. */
export interface ShopCart {
  lines: Record<string, CartLine>
}

/** Most of one product in a cart. */
export const MAX_QTY = 99
/** Most lines in a cart; quantity changes fold lines, so this is only reached by many adds. */
export const MAX_LINES = 200

export function emptyCart(): ShopCart {
  return { lines: {} }
}

/** A stored cart is data from the store: read it defensively. */
export function isShopCart(value: unknown): value is ShopCart {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as ShopCart).lines === 'object' &&
    (value as ShopCart).lines !== null
  )
}

export class CartError extends Error {
  override readonly name = 'CartError'
  readonly status = 400
}

/** How many of `productId` are in the cart. */
export function quantityOf(cart: ShopCart, productId: string): number {
  let qty = 0
  for (const line of Object.values(cart.lines)) {
    if (line?.productId === productId && Number.isInteger(line.qty) && line.qty > 0) qty += line.qty
  }
  return qty
}

/** Adds `qty` of a product as a new line. Throws a CartError for an unknown product or too many. */
export function addToCart(
  cart: ShopCart,
  productId: unknown,
  qty = 1,
  lineId = newLineId(),
): Product {
  const product = requireProduct(productId)
  if (!Number.isInteger(qty) || qty < 1)
    throw new CartError('Quantity must be a whole number of at least 1')
  if (quantityOf(cart, product.id) + qty > MAX_QTY)
    throw new CartError(`At most ${MAX_QTY} of one product fit in a cart`)
  if (Object.keys(cart.lines).length >= MAX_LINES) throw new CartError('Your cart is full')
  cart.lines[lineId] = { productId: product.id, qty }
  return product
}

/** Sets a product's quantity (0 removes it), folding its lines into one. */
export function setQuantity(cart: ShopCart, productId: unknown, qty: number): Product {
  const product = requireProduct(productId)
  if (!Number.isInteger(qty) || qty < 0 || qty > MAX_QTY)
    throw new CartError(`Quantity must be a whole number from 0 to ${MAX_QTY}`)
  let kept: string | undefined
  for (const [id, line] of Object.entries(cart.lines)) {
    if (line.productId !== product.id) continue
    if (kept === undefined && qty > 0) {
      kept = id
      line.qty = qty
    } else {
      delete cart.lines[id]
    }
  }
  if (kept === undefined && qty > 0) cart.lines[newLineId()] = { productId: product.id, qty }
  return product
}

export function removeFromCart(cart: ShopCart, productId: unknown): Product {
  return setQuantity(cart, productId, 0)
}

export interface CartItem {
  product: Product
  qty: number
  lineTotal: number
}

export interface CartSummary {
  items: CartItem[]
  /** Number of units. */
  count: number
  subtotal: number
  shipping: number
  total: number
}

/** Orders of at least this many cents ship free. */
export const FREE_SHIPPING_FROM = 4000
export const SHIPPING = 490

/** The cart as the pages show it: one row per product, in catalog order, with totals in cents. */
export function summarize(cart: ShopCart | undefined): CartSummary {
  const items: CartItem[] = []
  for (const product of PRODUCTS) {
    const qty = cart ? quantityOf(cart, product.id) : 0
    if (qty > 0) items.push({ product, qty, lineTotal: qty * product.price })
  }
  const count = items.reduce((n, item) => n + item.qty, 0)
  const subtotal = items.reduce((sum, item) => sum + item.lineTotal, 0)
  const shipping = count === 0 || subtotal >= FREE_SHIPPING_FROM ? 0 : SHIPPING
  return { items, count, subtotal, shipping, total: subtotal + shipping }
}

function requireProduct(productId: unknown): Product {
  const product = findProduct(productId)
  if (!product) throw new CartError(`There is no product "${String(productId).slice(0, 64)}"`)
  return product
}

function newLineId(): string {
  return randomBytes(6).toString('hex')
}
