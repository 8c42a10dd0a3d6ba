/**
 * The middleware's guarantees across two real app processes sharing one store
 * (test/fixtures/session-app.ts, its store chosen by `env`):
 * - 1000 distinct cart adds on one session, arriving 50 at a time spread over both processes:
 *   every one is answered 200 and every one is kept. Contention alone is no reason for a 503;
 * - one process killed (kill -9) with adds in flight and started again: every add answered 200
 *   is kept, none answered 503 is, and only the dead process's adds went unanswered;
 * - a logout in one process racing a slow write in the other: the session stays destroyed,
 *   in both processes;
 * - a logout in one process racing adds in the other: each add is answered 200 or 503, and
 *   the destroyed session does not come back.
 * With RENEW_AFTER in `env`, the apps renew ids as they go (see test/fixtures/session-app.ts)
 * while the test keeps sending the first cookie, so every request straddles renewals.
 */
import { startApp, type AppProcess } from './support/app-process'

// Generous: 1000 requests through two processes on a loaded machine. Nothing waits on a clock.
jest.setTimeout(300_000)

export function describeTwoProcesses(name: string, env: Record<string, string>): void {
  describe(`two app processes over ${name}`, () => {
    let apps: AppProcess[] = []

    beforeAll(async () => {
      // Both start (and create a table or directory) at the same moment.
      apps = await Promise.all([startApp(env), startApp(env)])
    })
    afterAll(async () => {
      await Promise.all(apps.map((app) => app.stop()))
    })

    const post = (app: AppProcess, path: string, cookie?: string) =>
      fetch(`${app.url}${path}`, { method: 'POST', headers: cookie ? { cookie } : {} })
    async function cart(app: AppProcess, cookie: string): Promise<{ id: string; items: string[] }> {
      const res = await fetch(`${app.url}/cart`, { headers: { cookie } })
      expect(res.status).toBe(200)
      return (await res.json()) as { id: string; items: string[] }
    }
    async function start(): Promise<string> {
      const res = await post(apps[0]!, '/cart/add/first')
      expect(res.status).toBe(200)
      return res.headers.get('set-cookie')!.split(';')[0]!
    }

    it('answers 1000 distinct adds on one session, 50 at a time over both processes, all with 200, and keeps every one', async () => {
      const cookie = await start()
      const firstId = env.RENEW_AFTER ? (await cart(apps[0]!, cookie)).id : undefined
      const total = 1000
      const batch = 50
      const counts: Record<string, number> = {}
      const refusals = new Set<string>()
      const refused: string[] = []
      for (let from = 0; from < total; from += batch) {
        const items = Array.from({ length: batch }, (_, i) => `item-${from + i}`)
        await Promise.all(
          items.map(async (item, i) => {
            const res = await post(apps[i % 2]!, `/cart/add/${item}`, cookie)
            const body = await res.text()
            counts[res.status] = (counts[res.status] ?? 0) + 1
            if (res.status !== 200) {
              refused.push(item)
              refusals.add(`${res.status} ${body.replace(/[0-9a-f-]{36}/g, '<id>')}`)
            }
          }),
        )
      }
      // Every add answered, every answer a 200: what the other process wrote meanwhile is
      // replayed onto, never reported as a failure. The reasons show up in a failure's diff.
      expect({ counts, refusals: [...refusals] }).toEqual({ counts: { 200: total }, refusals: [] })
      const all = ['first', ...Array.from({ length: total }, (_, i) => `item-${i}`)]
      for (const app of apps) {
        const seen = await cart(app, cookie)
        // Each add exactly once, none lost; no refused add would be there either.
        expect([...seen.items].sort()).toEqual([...all].sort())
        expect(seen.items.filter((item) => refused.includes(item))).toEqual([])
        // With renewal on, the first cookie reached the one session through its forwards.
        if (firstId !== undefined) expect(seen.id).not.toBe(firstId)
      }
    })

    it('keeps what each add was told when one process is killed (kill -9) with adds in flight and started again', async () => {
      const cookie = await start()
      const status = new Map<string, number | 'no answer'>()
      const add = async (app: AppProcess, item: string) => {
        const answer = await post(app, `/cart/add/${item}`, cookie).then(
          (res) => res.status,
          () => 'no answer' as const,
        )
        status.set(item, answer)
      }
      const batch = (from: number) =>
        Promise.all(Array.from({ length: 50 }, (_, i) => add(apps[i % 2]!, `item-${from + i}`)))
      await batch(0)
      // Adds in flight on both; one process dies under its share and a supervisor restarts it.
      const victim = apps[1]!
      const inFlight = Promise.all([
        ...Array.from({ length: 25 }, (_, i) => add(victim, `crash-${i}`)),
        ...Array.from({ length: 25 }, (_, i) => add(apps[0]!, `alive-${i}`)),
      ])
      await victim.stop()
      await inFlight
      apps[1] = await startApp(env)
      await batch(50)

      const seen = new Set((await cart(apps[0]!, cookie)).items)
      expect(new Set((await cart(apps[1]!, cookie)).items)).toEqual(seen)
      for (const [item, answer] of status) {
        // An add answered 200 is kept and one answered 503 is not; an add the dead process never
        // answered may have been saved or not, and is the only kind that went unanswered.
        if (answer === 200) expect([item, seen.has(item)]).toEqual([item, true])
        else if (answer === 'no answer') expect(item).toMatch(/^crash-/)
        else expect([item, answer, seen.has(item)]).toEqual([item, 503, false])
      }
      expect([...seen].filter((item) => !status.has(item))).toEqual(['first'])
    })

    it('leaves the session destroyed in both processes when a logout in one races a slow write in the other', async () => {
      const cookie = await start()
      const { id } = await cart(apps[0]!, cookie)
      const gate = `gate-${id}`
      const slow = post(apps[1]!, `/slow-note/${gate}`, cookie)
      expect((await fetch(`${apps[1]!.url}/waiting/${gate}`)).status).toBe(200)
      const logout = await post(apps[0]!, '/logout', cookie)
      expect(logout.status).toBe(200)
      expect((await post(apps[1]!, `/release/${gate}`)).status).toBe(200)
      const late = await slow
      expect(late.status).toBe(200)
      expect(late.headers.get('set-cookie') ?? '').not.toMatch(/connect\.sid=s%3A/)
      for (const app of apps) {
        const after = await cart(app, cookie)
        expect(after.id).not.toBe(id)
        expect(after.items).toEqual([])
      }
    })

    it('keeps the session destroyed when a logout in one process races adds in the other', async () => {
      const cookie = await start()
      const { id } = await cart(apps[0]!, cookie)
      const [logout, ...late] = await Promise.all([
        post(apps[0]!, '/logout', cookie),
        ...Array.from({ length: 10 }, (_, i) => post(apps[1]!, `/cart/add/after-${i}`, cookie)),
      ])
      expect(logout.status).toBe(200)
      // An add that lost the race is dropped quietly (its session is gone), never an error.
      expect(late.map((res) => res.status)).toEqual(Array(10).fill(200))
      for (const app of apps) {
        const after = await cart(app, cookie)
        expect(after.id).not.toBe(id)
        expect(after.items).toEqual([])
      }
    })
  })
}
