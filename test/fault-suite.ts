/**
 * What a client is told against what happened, through session() over a real store while the
 * store hangs (stops answering, connections open) or dies (connections reset, new ones
 * refused) and comes back. For every store it runs on:
 * - every request is answered within its bound (the configured timeouts, one load and one save,
 *   with a margin no loaded machine crosses), however many are queued on one session;
 * - no change of a request answered 5xx is present afterwards;
 * - no change of a request answered 200 is missing;
 * - a session whose logout was answered 200 does not come back, even though requests that had
 *   loaded it before were saving into the fault.
 *
 * Each request is measured from its own start to its answer; nothing waits on a clock.
 */
import express from 'express'
import session from '../entries/index'
import type { Store } from '../lib/store'
import { jsonErrors, serve } from './support/serve'

jest.setTimeout(120_000)

/** A store over a link the test can break. */
export interface FaultyStore {
  store: Store
  /** Stops answering with connections kept open (SIGSTOP, a stalled network). */
  hang(): void
  /** Answers again; resolves once what the store received meanwhile has been processed. */
  resume(): Promise<void>
  /** Goes away: open connections reset, new ones refused. */
  kill(): Promise<void>
  /** Comes back after `kill`. */
  restart(): Promise<void>
  close(): Promise<void>
}

export interface FaultOptions {
  /** The store's own call timeout, in ms, as configured in `open`. */
  storeTimeout: number
  /**
   * Whether a request during the fault may be answered 200: a layered store whose hot layer
   * fails carries on with the cold one. Either way, what each request was told must hold.
   */
  servesDuringFault?: boolean
}

/** The middleware's save deadline in these tests. */
const SAVE_TIMEOUT = 1000
/** Generous room for a loaded machine; far below what queued saves waiting in turn would take. */
const MARGIN = 8000
/** Requests queued on one session during the fault: one timeout each would take 20+ s. */
const QUEUED = 20

interface Answer {
  item: string
  status: number
  ms: number
  body: string
}

export function describeFaults(
  name: string,
  open: () => Promise<FaultyStore>,
  options: FaultOptions,
): void {
  // One load and one save, each within its own bound.
  const bound = options.storeTimeout + SAVE_TIMEOUT

  describe(`session() over ${name}, with the store failing`, () => {
    let faulty: FaultyStore
    let base: string
    let close: () => Promise<void>
    const gates = new Map<string, () => void>()
    const arrived = new Map<string, () => void>()

    beforeAll(async () => {
      faulty = await open()
      const app = express()
      app.use(session(faulty.store, { secret: 'fault-secret', saveTimeout: SAVE_TIMEOUT }))
      app.post('/cart/add/:item', async (req, res) => {
        const item = req.params.item!
        if (item.startsWith('held-')) {
          // Loaded; waits here until the test opens the gate.
          await new Promise<void>((resolve) => {
            gates.set(item, resolve)
            arrived.get(item)?.()
          })
        }
        ;(req.session.cart ??= { items: [] }).items.push(item)
        res.json({ ok: true })
      })
      app.get('/cart', (req, res) =>
        res.json({ id: req.session.id, items: req.session.cart?.items ?? [] }),
      )
      app.post('/logout', async (req, res) => {
        await req.session.destroy()
        res.json({ ok: true })
      })
      jsonErrors(app)
      ;({ base, close } = await serve(app))
    })
    afterAll(async () => {
      await close?.()
      await faulty?.close()
    })

    async function add(item: string, cookie?: string): Promise<Answer & { cookie?: string }> {
      const started = Date.now()
      const res = await fetch(`${base}/cart/add/${item}`, {
        method: 'POST',
        headers: cookie ? { cookie } : {},
      })
      const body = await res.text()
      const set = res.headers.get('set-cookie')?.split(';')[0]
      return { item, status: res.status, ms: Date.now() - started, body, cookie: set }
    }
    /** The cart once the store answers again (the first calls after a fault may still fail). */
    async function cart(cookie: string): Promise<{ id: string; items: string[] }> {
      for (let attempt = 0; ; attempt++) {
        const res = await fetch(`${base}/cart`, { headers: { cookie } })
        if (res.status === 200) return (await res.json()) as { id: string; items: string[] }
        if (attempt > 200) throw new Error(`GET /cart kept failing: ${res.status}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
    /** Adds until one is answered 200 (the store is back); every answer, in order. */
    async function recovered(label: string, cookie: string): Promise<Answer[]> {
      const answers: Answer[] = []
      for (let attempt = 0; ; attempt++) {
        const answer = await add(`${label}-${attempt}`, cookie)
        answers.push(answer)
        if (answer.status === 200) return answers
        if (attempt > 200) throw new Error(`adds kept failing: ${answer.status} ${answer.body}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
    /** Requests that load `cookie`'s session and wait in the handler until released. */
    async function hold(label: string, cookie: string, n: number) {
      const items = Array.from({ length: n }, (_, i) => `held-${label}-${i}`)
      const loaded = items.map((item) => new Promise<void>((r) => arrived.set(item, r)))
      const answers = items.map((item) => add(item, cookie))
      await Promise.all(loaded)
      return {
        answers,
        release: () => {
          for (const item of items) gates.get(item)!()
        },
      }
    }
    async function newCart(label: string): Promise<{ cookie: string; ok: string[] }> {
      const first = await add(`${label}-first`)
      expect(first.status).toBe(200)
      const cookie = first.cookie!
      const more = await Promise.all(
        Array.from({ length: 5 }, (_, i) => add(`${label}-ok-${i}`, cookie)),
      )
      expect(more.map((r) => r.status)).toEqual(Array(5).fill(200))
      return { cookie, ok: [first.item, ...more.map((r) => r.item)] }
    }

    /** Each answer within its bound, a 503 or (where allowed) a 200, and never anything else. */
    function checkAnswers(answers: Answer[]): void {
      for (const a of answers) {
        expect({ item: a.item, late: a.ms >= bound + MARGIN }).toEqual({
          item: a.item,
          late: false,
        })
        const allowed = options.servesDuringFault ? [200, 503] : [503]
        expect({ item: a.item, status: allowed.includes(a.status) ? 'allowed' : a.status }).toEqual(
          { item: a.item, status: 'allowed' },
        )
      }
    }
    /** What each request was told is what the cart holds. */
    function checkCart(items: string[], before: string[], answers: Answer[]): void {
      const ok = answers.filter((a) => a.status === 200).map((a) => a.item)
      expect([...items].sort()).toEqual([...before, ...ok].sort())
    }

    async function run(
      label: string,
      fail: () => void | Promise<void>,
      recover: () => Promise<void>,
    ): Promise<void> {
      const cart1 = await newCart(`${label}-cart`)
      const gone = await newCart(`${label}-gone`)
      const goneId = (await cart(gone.cookie)).id
      // Requests on both sessions load them, then wait while the store fails.
      const held = await hold(`${label}-cart`, cart1.cookie, 5)
      const heldGone = await hold(`${label}-gone`, gone.cookie, 3)
      // The logout is answered before the fault; the requests that loaded the session save into it.
      const logout = await fetch(`${base}/logout`, {
        method: 'POST',
        headers: { cookie: gone.cookie },
      })
      expect(logout.status).toBe(200)

      await fail()
      let during: Answer[]
      let afterLogout: Answer[]
      try {
        held.release()
        heldGone.release()
        ;[during, afterLogout] = await Promise.all([
          Promise.all([
            ...held.answers,
            ...Array.from({ length: QUEUED }, (_, i) => add(`${label}-during-${i}`, cart1.cookie)),
          ]),
          Promise.all(heldGone.answers),
        ])
      } finally {
        await recover()
      }
      checkAnswers(during)
      for (const a of afterLogout) {
        expect(a.ms).toBeLessThan(bound + MARGIN)
        expect([200, 503]).toContain(a.status) // 200: the save found the session gone, and dropped it
      }

      // Requests on the session work again (the first ones after the fault may still be refused,
      // while the store's recovery is confirmed), and it holds exactly what was answered 200.
      const after = await recovered(`${label}-after`, cart1.cookie)
      checkAnswers(after.slice(0, -1))
      const { items } = await cart(cart1.cookie)
      checkCart(items, cart1.ok, [...during, ...after])
      // The logged-out session stayed logged out, in the store too.
      const revisited = await cart(gone.cookie)
      expect(revisited.id).not.toBe(goneId)
      expect(revisited.items).toEqual([])
      expect(await faulty.store.load(goneId)).toBeNull()
    }

    it('hung, then resumed: every request is answered within its bound, and what each was told is what is stored', async () => {
      await run(
        'hang',
        () => faulty.hang(),
        () => faulty.resume(),
      )
    })

    it('killed, then restarted: every request is answered within its bound, and what each was told is what is stored', async () => {
      await run(
        'kill',
        () => faulty.kill(),
        () => faulty.restart(),
      )
    })
  })
}

declare module '../lib/session.js' {
  interface SessionData {
    cart: { items: string[] }
  }
}
