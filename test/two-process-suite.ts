/**
 * The middleware's guarantees across two real app processes sharing one store
 * (test/fixtures/session-app.ts, its store chosen by `env`):
 * - 200 concurrent adds to one cart, alternating between the processes: none is lost (every
 *   add answered 200 is kept, none answered 503 is);
 * - a logout in one process racing a slow write in the other: the session stays destroyed,
 *   in both processes.
 */
import { startApp, type AppProcess } from './support/app-process'

jest.setTimeout(90_000)

export function describeTwoProcesses(name: string, env: Record<string, string>): void {
  describe(`two app processes over ${name}`, () => {
    let apps: AppProcess[] = []

    beforeAll(async () => {
      // Both start (and create the table) at the same moment.
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

    it('loses none of 200 concurrent adds split between the two processes', async () => {
      const cookie = await start()
      const items = Array.from({ length: 200 }, (_, i) => `item-${i}`)
      const responses = await Promise.all(
        items.map((item, i) => post(apps[i % 2]!, `/cart/add/${item}`, cookie)),
      )
      const saved = items.filter((_, i) => responses[i]!.status === 200)
      const refused = items.filter((_, i) => responses[i]!.status !== 200)
      // A refusal may only be the middleware giving up after repeated conflicts with the other
      // process (a 503 that says "not saved"); anything else is a failure of the store.
      for (const res of responses.filter((r) => r.status !== 200)) {
        expect(res.status).toBe(503)
        expect(await res.text()).toMatch(/gave up after \d+ conflicting saves/)
      }
      expect(saved.length).toBeGreaterThan(0)
      for (const app of apps) {
        const seen = await cart(app, cookie)
        // Every add answered 200 is there, and no add answered 503 is.
        expect(new Set(seen.items)).toEqual(new Set(['first', ...saved]))
        expect(seen.items).toHaveLength(1 + saved.length)
        expect(seen.items.filter((item) => refused.includes(item))).toEqual([])
      }
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
  })
}
