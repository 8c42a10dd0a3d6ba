/**
 * The header of the shop's error pages over HTTP: a 404 and the error handler's page show who is
 * signed in and what the cart holds, as stored. After a failed save that is the cart before the
 * request; when the session cannot be loaded at all, the header claims nobody and no count.
 */
import request from 'supertest'
import { createApp } from '../../example-app/app.js'
import {
  MemoryStore,
  StoreError,
  type LoadOptions,
  type SaveResult,
  type SessionChange,
  type SessionRecord,
} from '../../entries/index.js'
import { headerOf, testIdText } from './page-text.js'

/** A MemoryStore that can be made to fail its loads or its saves, as a store that is down does. */
class FailingStore extends MemoryStore {
  failing: 'load' | 'save' | undefined

  override async load(id: string, options?: LoadOptions): Promise<SessionRecord | null> {
    if (this.failing === 'load')
      throw new StoreError('connection refused', { code: 'ECONNREFUSED' })
    return super.load(id, options)
  }

  override async save(id: string, change: SessionChange): Promise<SaveResult> {
    if (this.failing === 'save')
      throw new StoreError('connection refused', { code: 'ECONNREFUSED' })
    return super.save(id, change)
  }
}

const stores: FailingStore[] = []
let logged: jest.SpyInstance
beforeEach(() => {
  logged = jest.spyOn(console, 'error').mockImplementation(() => undefined)
})
afterEach(async () => {
  logged.mockRestore()
  await Promise.all(stores.splice(0).map((s) => s.close()))
})

/** A shop and a browser signed in as Erin with three items of two products in the cart. */
async function signedInWithCart() {
  const store = new FailingStore()
  stores.push(store)
  const browser = request.agent(createApp({ store, secret: 'test-secret', storeName: 'memory' }))
  await browser.post('/login').type('form').send({ username: 'Erin' }).expect(303)
  for (const productId of ['mug', 'mug', 'honey'])
    await browser.post('/api/cart/add').send({ productId }).expect(200)
  return { store, browser }
}

function expectSignedInHeader(page: string, cartCount: string) {
  const header = headerOf(page)
  expect(testIdText(header, 'user')).toBe('Erin')
  expect(testIdText(header, 'cart-count')).toBe(cartCount)
  expect(header).toContain('>Sign out</button>')
  expect(header).toContain('href="/sessions"')
  expect(header).not.toContain('Sign in')
}

describe('the header of error pages', () => {
  it('shows the signed-in name, "Sign out" and the cart count on a 404', async () => {
    const { browser } = await signedInWithCart()
    const page = await browser.get('/no-such-page').expect(404)
    expect(page.text).toContain('There is no such page.')
    expectSignedInHeader(page.text, '3')
  })

  it("shows them on the error handler's page for a bad form and for an unreadable body", async () => {
    const { browser } = await signedInWithCart()
    const bad = await browser
      .post('/cart/remove')
      .type('form')
      .send({ productId: 'no-such-product' })
      .expect(400)
    expect(bad.text).toContain('There is no product &quot;no-such-product&quot;')
    expectSignedInHeader(bad.text, '3')

    const huge = await browser
      .post('/cart/add')
      .type('form')
      .send({ productId: 'mug', note: 'x'.repeat(20_000) })
      .expect(400)
    expect(huge.text).toContain('That request could not be read.')
    expectSignedInHeader(huge.text, '3')
  })

  it('shows a guest "Sign in" and the guest\'s own cart', async () => {
    const store = new FailingStore()
    stores.push(store)
    const guest = request.agent(createApp({ store, secret: 'test-secret' }))
    await guest.post('/api/cart/add').send({ productId: 'sencha' }).expect(200)
    const page = await guest
      .post('/cart/update')
      .type('form')
      .send({ productId: 'sencha', quantity: 'lots' })
      .expect(400)
    expect(page.text).toContain('Quantity must be a whole number')
    const header = headerOf(page.text)
    expect(testIdText(header, 'cart-count')).toBe('1')
    expect(header).toContain('href="/login"')
    expect(testIdText(header, 'user')).toBeUndefined()
    expect(header).not.toContain('Sign out')
  })

  it('after a save the store refused, shows the cart as stored, without the add that failed', async () => {
    const { store, browser } = await signedInWithCart()
    store.failing = 'save'
    const page = await browser
      .post('/cart/add')
      .type('form')
      .send({ productId: 'sencha' })
      .expect(503)
    expect(page.text).toContain('The session store is not answering.')
    expectSignedInHeader(page.text, '3') // not 4: the add was never saved
    expect(logged).toHaveBeenCalledWith(expect.stringMatching(/^503: /))

    store.failing = undefined
    const cart = await browser.get('/cart').expect(200)
    expectSignedInHeader(cart.text, '3')
  })

  it('claims no name and no count when the session cannot be loaded', async () => {
    const { store, browser } = await signedInWithCart()
    store.failing = 'load'
    const page = await browser.get('/cart').expect(503)
    expect(page.text).toContain('The session store is not answering.')
    const header = headerOf(page.text)
    expect(header).toContain('href="/cart"')
    expect(testIdText(header, 'cart-count')).toBeUndefined()
    expect(testIdText(header, 'user')).toBeUndefined()
    expect(header).not.toContain('Sign in')
    expect(header).not.toContain('Sign out')

    store.failing = undefined // back up: the session was there all along
    expectSignedInHeader((await browser.get('/cart').expect(200)).text, '3')
  })
})
