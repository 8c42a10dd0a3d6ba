/**
 * memorystore (an LRU with TTLs) built on the drop-in's own Store, and on express-session's:
 * the Store conformance suite and the concurrency suite through the adapter, and the TTL it
 * reads from cookie.maxAge.
 */
import express from 'express'
import request from 'supertest'
import dropIn, { adaptLegacyStore, Store } from '../../entries/express-session.js'
import { describeMiddlewareOverStore } from '../middleware-store-suite.js'
import { describeStore } from '../store-conformance.js'
import { cookieOf, viewsApp } from './support/http.js'
import { useFakeDate } from '../support/clock.js'
import { createMemoryStore, expressSession } from './support/modules.js'

const SECRET = 'memorystore-secret'
/** memorystore's class, extending the drop-in's Store: `require('memorystore')(session)`. */
const MemoryStore = createMemoryStore(dropIn)

describeStore(
  'adapted memorystore',
  async () => adaptLegacyStore(new MemoryStore({ checkPeriod: 60_000 })),
  { renewable: false, keyExpiry: false }, // an express-session store renews no ids and keeps no per-key expiries
)
describeMiddlewareOverStore('adapted memorystore', async () =>
  adaptLegacyStore(new MemoryStore({ checkPeriod: 60_000 })),
)

describe('memorystore through the drop-in', () => {
  it("extends the drop-in's Store, and one built on express-session's Store works the same", async () => {
    expect(new MemoryStore()).toBeInstanceOf(Store)
    for (const store of [new MemoryStore(), new (createMemoryStore(expressSession))()]) {
      const app = viewsApp(
        express(),
        dropIn({ secret: SECRET, store, resave: false, saveUninitialized: false }),
      )
      const cookie = cookieOf(await request(app).get('/views'))
      expect((await request(app).get('/views').set('Cookie', cookie)).body.views).toBe(2)
      expect(
        await new Promise((resolve) => store.length!((_err: unknown, n: number) => resolve(n))),
      ).toBe(1)
    }
  })

  describe('with a test clock', () => {
    const clock = useFakeDate()

    it("gets its TTL from the session's cookie, as it did under express-session", async () => {
      const store = new MemoryStore()
      const app = viewsApp(
        express(),
        dropIn({
          secret: SECRET,
          store,
          resave: false,
          saveUninitialized: false,
          cookie: { maxAge: 300 },
        }),
      )
      const { id } = (await request(app).get('/views')).body as { id: string }
      // lru-cache's entry: e is its expiry in epoch ms.
      const entry = (store.store.dump() as Array<{ k: string; e: number }>).find((e) => e.k === id)!
      expect(entry.e).toBe(clock.now() + 300)
      clock.advance(299)
      expect(await adaptLegacyStore(store).load(id)).not.toBeNull()
      clock.advance(2)
      expect(await adaptLegacyStore(store).load(id)).toBeNull()
    })
  })
})
