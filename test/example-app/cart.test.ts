/** The cart model and the HTML escaping, without HTTP. */
import { replayKey } from '../../lib/changes.js'
import {
  addToCart,
  CartError,
  emptyCart,
  MAX_QTY,
  quantityOf,
  removeFromCart,
  setQuantity,
  summarize,
} from '../../example-app/cart.js'
import { escapeHtml, html } from '../../example-app/html.js'

describe('cart', () => {
  it('adds each item as its own line and sums them per product', () => {
    const cart = emptyCart()
    addToCart(cart, 'mug', 1, 'a')
    addToCart(cart, 'mug', 2, 'b')
    addToCart(cart, 'honey', 1, 'c')
    expect(Object.keys(cart.lines)).toEqual(['a', 'b', 'c'])
    expect(quantityOf(cart, 'mug')).toBe(3)
    expect(summarize(cart)).toEqual(
      expect.objectContaining({
        count: 4,
        subtotal: 3 * 1400 + 975,
        shipping: 0,
        total: 3 * 1400 + 975,
      }),
    )
  })

  it('folds a product into one line when its quantity is set, and removes it at 0', () => {
    const cart = emptyCart()
    addToCart(cart, 'mug', 1, 'a')
    addToCart(cart, 'sencha', 1, 'b')
    addToCart(cart, 'mug', 1, 'c')
    setQuantity(cart, 'mug', 5)
    expect(cart.lines).toEqual({
      a: { productId: 'mug', qty: 5 },
      b: { productId: 'sencha', qty: 1 },
    })
    removeFromCart(cart, 'mug')
    expect(cart.lines).toEqual({ b: { productId: 'sencha', qty: 1 } })
    setQuantity(cart, 'honey', 2)
    expect(quantityOf(cart, 'honey')).toBe(2)
  })

  it('charges shipping under $40 only, and nothing for an empty cart', () => {
    expect(summarize(emptyCart())).toEqual({
      items: [],
      count: 0,
      subtotal: 0,
      shipping: 0,
      total: 0,
    })
    const cart = emptyCart()
    addToCart(cart, 'filters')
    expect(summarize(cart)).toEqual(
      expect.objectContaining({ subtotal: 450, shipping: 490, total: 940 }),
    )
  })

  it('rejects unknown products, odd quantities and more than the cap', () => {
    const cart = emptyCart()
    for (const id of ['nope', '__proto__', 'constructor', 42, undefined])
      expect(() => addToCart(cart, id)).toThrow(CartError)
    expect(() => addToCart(cart, 'mug', 0)).toThrow(CartError)
    expect(() => addToCart(cart, 'mug', 1.5)).toThrow(CartError)
    expect(() => setQuantity(cart, 'mug', MAX_QTY + 1)).toThrow(CartError)
    setQuantity(cart, 'mug', MAX_QTY)
    expect(() => addToCart(cart, 'mug')).toThrow(/At most 99/)
  })

  it('ignores lines it cannot read (a product gone from the catalog, a broken quantity)', () => {
    const cart = {
      lines: {
        a: { productId: 'retired', qty: 2 },
        b: { productId: 'mug', qty: 'x' as unknown as number },
        c: { productId: 'mug', qty: 1 },
      },
    }
    expect(summarize(cart)).toEqual(expect.objectContaining({ count: 1, subtotal: 1400 }))
  })

  // Why every add is a new line: concord-session replays concurrent saves at path level.
  it('keeps both of two racing adds of the same product when replayed by the core', () => {
    const loaded = emptyCart()
    const mine = emptyCart()
    const theirs = emptyCart()
    addToCart(mine, 'mug', 1, 'line-mine')
    addToCart(theirs, 'mug', 1, 'line-theirs')
    const merged = JSON.parse(
      replayKey(JSON.stringify(loaded), JSON.stringify(mine), JSON.stringify(theirs)),
    )
    expect(quantityOf(merged, 'mug')).toBe(2)
  })

  it('keeps an add that races a quantity change', () => {
    const loaded = emptyCart()
    addToCart(loaded, 'mug', 1, 'a')
    const change = structuredClone(loaded)
    setQuantity(change, 'mug', 4)
    const add = structuredClone(loaded)
    addToCart(add, 'mug', 1, 'b')
    const merged = JSON.parse(
      replayKey(JSON.stringify(loaded), JSON.stringify(add), JSON.stringify(change)),
    )
    expect(quantityOf(merged, 'mug')).toBe(5)
  })
})

describe('html', () => {
  it('escapes every interpolated value, in text and in attributes', () => {
    const name = `<img src=x onerror="alert('x')">&`
    expect(html`<p title="${name}">${name}</p>`.value).toBe(
      '<p title="&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;">&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;</p>',
    )
  })

  it('nests safe fragments as they are, escapes arrays item by item, and renders nothing for null and false', () => {
    const items = ['<a>', html`<b>ok</b>`]
    expect(
      html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>${null}${undefined}${false}${0}`.value,
    ).toBe('<ul><li>&lt;a&gt;</li><li><b>ok</b></li></ul>0')
    expect(escapeHtml(`"'<>&`)).toBe('&quot;&#39;&lt;&gt;&amp;')
  })
})
