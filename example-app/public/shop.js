// Corner Coffee & Tea: the page works without this script; with it, "Add to cart" uses fetch()
// and the page stays put. Several adds may be in flight at once; the server merges them.
'use strict'
;(function () {
  let pending = 0
  let toastTimer

  function setPending(n) {
    pending = n
    document.body.dataset.pending = String(n)
  }

  function toast(text) {
    const el = document.getElementById('toast')
    if (!el) return
    el.textContent = text
    el.hidden = false
    clearTimeout(toastTimer)
    toastTimer = setTimeout(function () {
      el.hidden = true
    }, 2500)
  }

  function showCart(cart) {
    const badge = document.getElementById('cart-count')
    if (badge) badge.textContent = String(cart.count)
    const counts = new Map(
      cart.items.map(function (i) {
        return [i.productId, i.qty]
      }),
    )
    document.querySelectorAll('[data-product]').forEach(function (card) {
      const note = card.querySelector('.incart')
      const qty = counts.get(card.getAttribute('data-product')) || 0
      if (note) note.textContent = qty > 0 ? qty + ' in your cart' : ''
    })
  }

  async function addToCart(productId) {
    setPending(pending + 1)
    try {
      const res = await fetch('/api/cart/add', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ productId: productId }),
        credentials: 'same-origin',
      })
      const body = await res.json().catch(function () {
        return { error: 'Unexpected answer from the shop' }
      })
      if (!res.ok) throw new Error(body.error || 'Could not add to the cart')
      toast('Added to your cart')
      return body
    } catch (err) {
      toast(err.message)
      throw err
    } finally {
      setPending(pending - 1)
      // Answers can arrive in any order: once none is in flight, show the cart as stored.
      if (pending === 0) refresh()
    }
  }

  async function refresh() {
    try {
      const res = await fetch('/api/cart', {
        headers: { Accept: 'application/json' },
        credentials: 'same-origin',
      })
      if (res.ok && pending === 0) showCart(await res.json())
    } finally {
      document.body.dataset.synced = String(Number(document.body.dataset.synced || 0) + 1)
    }
  }

  document.addEventListener('submit', function (event) {
    const form = event.target
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute('data-add')) return
    event.preventDefault()
    addToCart(form.elements.namedItem('productId').value).catch(function () {})
  })

  document.addEventListener('DOMContentLoaded', function () {
    // Times are rendered in UTC on the server; show them in the visitor's zone.
    document.querySelectorAll('time[datetime]').forEach(function (el) {
      const at = new Date(el.getAttribute('datetime'))
      el.textContent =
        '(' +
        at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }) +
        ')'
      el.title = at.toString()
    })
  })

  window.shop = { addToCart: addToCart }
})()
