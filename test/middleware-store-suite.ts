/**
 * The middleware's concurrency guarantees, run through real HTTP against any store:
 *
 *   describeMiddlewareOverStore('RedisStore', async () => new RedisStore({ client, prefix }))
 *
 * - 200 concurrent requests on one session, each adding a distinct item: none is lost.
 * - A logout racing a slow write: the session stays destroyed.
 *
 * With `options.maxSessionsPerUser` (a number), every session is signed in to a user of its
 * own first, and 20 concurrent sign-ins of one user leave exactly that many sessions.
 * With `renew`, ids are renewed while the requests run: none is lost, and the first cookie
 * still reaches the one session (no second one is made); and requests that straddle a renewal
 * (one loaded before it, one arriving with the old cookie after it) lose nothing.
 * With `{ observed: true }` the same runs with an `onEvent` listener and a subscriber on every
 * diagnostics channel, which must see each request's change carried by exactly one save.
 */
import diagnostics_channel from 'node:diagnostics_channel'
import express from 'express'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import session, {
  channels,
  deriveIdHashKey,
  hashSessionId,
  type SaveContext,
  type SessionEvent,
} from '../entries/index.js'
import type { SessionOptions } from '../lib/options.js'
import { isClosable, isUserIndex, type Store } from '../lib/store.js'

const SECRET = 'middleware-store-suite-secret'

interface Cart {
  items: string[]
}

declare module '../lib/session.js' {
  interface SessionData {
    cart: Cart
    note: string
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** What an observed run saw: lifecycle events, finished saves, and failures published. */
interface Observed {
  events: SessionEvent[]
  saves: SaveContext[]
  errors: unknown[]
  stop(): void
}

function observe(): Observed {
  const seen: Observed = { events: [], saves: [], errors: [], stop: () => {} }
  const stops: Array<() => void> = []
  for (const name of Object.keys(channels)) {
    const handlers = {
      start() {},
      end() {},
      asyncStart() {},
      asyncEnd(message: unknown) {
        if (name === 'save') seen.saves.push(message as SaveContext)
      },
      error(message: unknown) {
        seen.errors.push((message as { error: unknown }).error)
      },
    }
    const channel = diagnostics_channel.tracingChannel(`concord-session:${name}`)
    channel.subscribe(handlers)
    stops.push(() => channel.unsubscribe(handlers))
  }
  seen.stop = () => stops.forEach((stop) => stop())
  return seen
}

export function describeMiddlewareOverStore(
  name: string,
  makeStore: () => Promise<Store>,
  { observed = false, ...options }: SessionOptions & { observed?: boolean } = {},
): void {
  const limit = typeof options.maxSessionsPerUser === 'number' ? options.maxSessionsPerUser : 0
  // Events show the keyed hash the store keys sessions by (see docs/at-rest.md).
  const eventId = (id: string) => hashSessionId(id, options.idHashKey ?? deriveIdHashKey(SECRET))
  const storedId = (id: string) => (options.hashIds === false ? id : eventId(id))
  const features = Object.keys(options).join(', ')
  const title = `${name}${features ? ` with ${features}` : ''}`
  describe(`session() over ${observed ? `${title}, with events and tracing on` : title}`, () => {
    let store: Store
    let server: Server
    let base: string
    let seen: Observed | undefined
    const gates = new Map<string, () => void>()
    const arrived = new Map<string, () => void>()

    beforeAll(async () => {
      store = await makeStore()
      const app = express()
      seen = observed ? observe() : undefined
      const onEvent = seen && ((event: SessionEvent) => void seen!.events.push(event))
      // The suite tests merging, not the save bound: on a loaded machine 200 overlapping saves
      // may take longer than the default 2 s, which would answer 503 rather than lose anything.
      app.use(
        session(store, {
          secret: SECRET,
          saveTimeout: 60_000,
          ...options,
          ...(onEvent && { onEvent }),
        }),
      )
      app.post('/signin/:user', async (req, res) => {
        await req.session.regenerate({ keepData: true })
        req.session.setUser(req.params.user)
        req.session.note = `signed in as ${req.params.user}`
        await req.session.save()
        res.json({ ok: true, id: req.session.id })
      })
      app.post('/cart/add/:item', async (req, res) => {
        const cart = (req.session.cart ??= { items: [] })
        // Hold the loaded copy a moment, so the requests genuinely overlap.
        await sleep(Math.random() * 10)
        cart.items.push(req.params.item)
        res.json({ ok: true })
      })
      app.post('/note/:text', (req, res) => {
        req.session.note = req.params.text
        res.json({ ok: true })
      })
      app.get('/cart', (req, res) =>
        res.json({ items: req.session.cart?.items ?? [], id: req.session.id }),
      )
      app.post('/held-add/:item/:gate', async (req, res) => {
        const cart = (req.session.cart ??= { items: [] })
        const gate = req.params.gate
        await new Promise<void>((resolve) => {
          gates.set(gate, resolve)
          arrived.get(gate)?.()
        })
        cart.items.push(req.params.item)
        res.json({ ok: true, id: req.session.id })
      })
      app.post('/slow-note/:gate', async (req, res) => {
        const gate = req.params.gate
        await new Promise<void>((resolve) => {
          gates.set(gate, resolve)
          arrived.get(gate)?.()
        })
        req.session.note = 'written after logout'
        res.json({ ok: true })
      })
      app.post('/logout', async (req, res) => {
        await req.session.destroy()
        res.json({ ok: true })
      })
      server = app.listen(0, '127.0.0.1')
      await new Promise((resolve) => server.once('listening', resolve))
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    })

    afterAll(async () => {
      seen?.stop()
      await new Promise((resolve) => server.close(resolve))
      if (isClosable(store)) await store.close()
    })

    async function startSession(): Promise<string> {
      if (limit > 0) {
        const signIn = await fetch(`${base}/signin/user-${Math.random()}`, { method: 'POST' })
        expect(signIn.status).toBe(200)
        const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!
        const res = await fetch(`${base}/cart/add/first`, { method: 'POST', headers: { cookie } })
        expect(res.status).toBe(200)
        return cookie
      }
      const res = await fetch(`${base}/cart/add/first`, { method: 'POST' })
      expect(res.status).toBe(200)
      const setCookie = res.headers.get('set-cookie')
      expect(setCookie).toMatch(/^connect\.sid=s%3A/)
      return setCookie!.split(';')[0]!
    }

    async function cartOf(cookie: string): Promise<{ items: string[]; id: string }> {
      const res = await fetch(`${base}/cart`, { headers: { cookie } })
      expect(res.status).toBe(200)
      return (await res.json()) as { items: string[]; id: string }
    }

    it('keeps every item when 200 concurrent requests each add a distinct one', async () => {
      const cookie = await startSession()
      const firstId = options.renew ? (await cartOf(cookie)).id : undefined
      const items = Array.from({ length: 200 }, (_, i) => `item-${i}`)
      const statuses = await Promise.all(
        items.map(
          async (item) =>
            (await fetch(`${base}/cart/add/${item}`, { method: 'POST', headers: { cookie } }))
              .status,
        ),
      )
      expect(statuses.filter((s) => s !== 200)).toEqual([])
      const cart = await cartOf(cookie)
      expect(cart.items).toHaveLength(201)
      expect(new Set(cart.items)).toEqual(new Set(['first', ...items]))
      // With renew, the requests straddled renewals: the old cookie reaches the renewed session.
      if (firstId !== undefined) expect(cart.id).not.toBe(firstId)
      if (seen) {
        // Each of the 201 changes was carried by exactly one successful save.
        const sessionId = eventId(cart.id)
        const mine = seen.saves.filter((s) => s.sessionId === sessionId)
        expect(mine.filter((s) => s.outcome !== 'saved')).toEqual([])
        expect(mine.reduce((sum, s) => sum + s.batched, 0)).toBe(201)
        expect(seen.errors).toEqual([])
        expect(
          seen.events.filter((e) => e.type === 'created' && e.sessionId === sessionId),
        ).toHaveLength(1)
      }
    })

    it('keeps every item when 200 concurrent requests all create the cart', async () => {
      const res = await fetch(`${base}/note/hello`, { method: 'POST' })
      const cookie = res.headers.get('set-cookie')!.split(';')[0]!
      const items = Array.from({ length: 200 }, (_, i) => `new-${i}`)
      const statuses = await Promise.all(
        items.map(
          async (item) =>
            (await fetch(`${base}/cart/add/${item}`, { method: 'POST', headers: { cookie } }))
              .status,
        ),
      )
      expect(statuses.filter((s) => s !== 200)).toEqual([])
      const cart = await cartOf(cookie)
      expect(new Set(cart.items)).toEqual(new Set(items))
      expect(cart.items).toHaveLength(200)
    })

    if (limit > 0) {
      it(`leaves exactly ${limit} sessions after 20 concurrent sign-ins of one user`, async () => {
        const user = `user-${Math.random()}`
        const signIns = await Promise.all(
          Array.from({ length: 20 }, async () => {
            const res = await fetch(`${base}/signin/${user}`, { method: 'POST' })
            expect(res.status).toBe(200)
            const { id } = (await res.json()) as { id: string }
            return { id, cookie: res.headers.get('set-cookie')!.split(';')[0]! }
          }),
        )
        if (!isUserIndex(store))
          throw new Error('maxSessionsPerUser needs a store with a user index')
        expect(await store.listByUser(user)).toHaveLength(limit)
        let live = 0
        for (const { id, cookie } of signIns) {
          if (await store.load(storedId(id))) live++
          // An evicted session's cookie gets a fresh, empty session: it never comes back.
          else expect((await cartOf(cookie)).id).not.toBe(id)
        }
        expect(live).toBe(limit)
      })
    }

    if (options.renew) {
      it('requests straddling a renewal lose nothing and make no second session', async () => {
        const oldCookie = await startSession()
        const { id: oldId } = await cartOf(oldCookie)
        /** Starts a request that loads the session, then waits at `gate` before adding `item`. */
        function held(item: string, gate: string) {
          const inHandler = new Promise<void>((resolve) => arrived.set(gate, resolve))
          const done = fetch(`${base}/held-add/${item}/${gate}`, {
            method: 'POST',
            headers: { cookie: oldCookie },
          })
          return { inHandler, done, release: () => gates.get(gate)!() }
        }
        const before = held('before', `before-${oldId}`)
        await before.inHandler
        // Requests with the old cookie until one renews the id (its response sets a new cookie).
        let newCookie: string | undefined
        const added: string[] = []
        for (let i = 0; i < 1000 && newCookie === undefined; i++) {
          const res = await fetch(`${base}/cart/add/n${i}`, {
            method: 'POST',
            headers: { cookie: oldCookie },
          })
          expect(res.status).toBe(200)
          added.push(`n${i}`)
          const sent = res.headers.get('set-cookie')?.split(';')[0]
          if (sent !== undefined && sent !== oldCookie) newCookie = sent
        }
        expect(newCookie).toBeDefined()
        const { id: newId } = await cartOf(newCookie!)
        expect(newId).not.toBe(oldId)
        const after = held('after', `after-${oldId}`)
        await after.inHandler
        before.release()
        after.release()
        const responses = await Promise.all([before.done, after.done])
        expect(responses.map((r) => r.status)).toEqual([200, 200])
        // Both saved into the renewed session and hand the browser its cookie; the one that
        // arrived after the renewal saw the new id from the start.
        for (const res of responses)
          expect(res.headers.get('set-cookie')?.split(';')[0]).toBe(newCookie)
        expect(((await responses[1]!.json()) as { id: string }).id).toBe(newId)
        const cart = await cartOf(newCookie!)
        expect(cart.id).toBe(newId)
        expect(new Set(cart.items)).toEqual(new Set(['first', ...added, 'before', 'after']))
        expect(cart.items).toHaveLength(added.length + 3)
        // The old id still reaches the same session within the grace: no second one.
        const viaOld = await store.load(storedId(oldId))
        expect(viaOld?.renewedTo).toBe(storedId(newId))
        expect((await cartOf(oldCookie)).id).toBe(newId)
      })
    }

    it('leaves the session destroyed when a logout races a slow write', async () => {
      const cookie = await startSession()
      const { id } = await cartOf(cookie)
      const gate = `gate-${id}`
      const inHandler = new Promise<void>((resolve) => arrived.set(gate, resolve))

      const slow = fetch(`${base}/slow-note/${gate}`, { method: 'POST', headers: { cookie } })
      await inHandler // the slow request has loaded the session and is waiting
      const logout = await fetch(`${base}/logout`, { method: 'POST', headers: { cookie } })
      expect(logout.status).toBe(200)
      expect(logout.headers.get('set-cookie')).toMatch(/^connect\.sid=;.*Expires=Thu, 01 Jan 1970/)

      gates.get(gate)!()
      const late = await slow
      expect(late.status).toBe(200)
      // The slow response must not hand the dead session back to the browser.
      expect(late.headers.get('set-cookie') ?? '').not.toMatch(/connect\.sid=s%3A/)

      expect(await store.load(storedId(id))).toBeNull()
      const after = await cartOf(cookie)
      expect(after.id).not.toBe(id)
      expect(after.items).toEqual([])
      if (seen) {
        const sessionId = eventId(id)
        expect(seen.events.filter((e) => 'sessionId' in e && e.sessionId === sessionId)).toEqual([
          { type: 'created', sessionId, at: expect.any(Number) },
          { type: 'destroyed', sessionId, at: expect.any(Number) },
        ])
        expect(seen.saves.filter((s) => s.sessionId === sessionId).at(-1)?.outcome).toBe('gone')
      }
    })
  })
}
