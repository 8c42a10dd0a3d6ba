/**
 * Two real app processes (test/fixtures/file-app-worker.ts: express, the session middleware and a
 * FileStore) on one session directory, with concurrent cart adds on one session. What each request
 * was told must be what is stored: an add answered 200 is in the cart, an add answered 5xx is not,
 * and with no fault every add is answered 200. One run also kills an app with kill -9 in the
 * middle and starts it again.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { killAll, run, type Run } from '../support/child-process'

jest.setTimeout(180_000)

const REPO = join(__dirname, '..', '..')
const APP = join(REPO, 'test', 'fixtures', 'file-app-worker.ts')
const root = mkdtempSync(join(tmpdir(), 'concord-file-apps-'))
afterAll(() => {
  killAll()
  rmSync(root, { recursive: true, force: true })
})

interface App {
  run: Run
  url: string
}

async function startApp(dir: string): Promise<App> {
  const started = run([process.execPath, '--import', 'tsx', APP, dir], { cwd: REPO })
  const port = Number((await started.line(/^port \d+$/)).split(' ')[1])
  return { run: started, url: `http://127.0.0.1:${port}` }
}

/** Why 5xx answers were given, for the log. */
const reasons = new Set<string>()

/** One add: the status it was answered with, or 'no answer' when the connection died first. */
async function add(app: App, cookie: string, item: string): Promise<number | 'no answer'> {
  try {
    const res = await fetch(`${app.url}/cart/add/${item}`, { method: 'POST', headers: { cookie } })
    const body = await res.text()
    if (res.status >= 500) reasons.add(body.replace(/[0-9a-f-]{36}/g, '<id>'))
    return res.status
  } catch {
    return 'no answer'
  }
}

async function cart(app: App, cookie: string): Promise<Set<string>> {
  const res = await fetch(`${app.url}/cart`, { headers: { cookie } })
  expect(res.status).toBe(200)
  return new Set(((await res.json()) as { items: string[] }).items)
}

describe('FileStore: two app processes on one directory', () => {
  it.each([
    ['with no fault', false],
    ['with one of them killed (kill -9) halfway and started again', true],
  ])(
    '%s: 1000 distinct cart adds on one session, 50 at a time over both; a 200 is stored, a 5xx is not',
    async (_name, crash) => {
      const dir = join(root, `apps-${crash ? 'crash' : 'plain'}`)
      const apps = [await startApp(dir), await startApp(dir)]
      const started = await fetch(`${apps[0]!.url}/start`, { method: 'POST' })
      expect(started.status).toBe(200)
      const cookie = started.headers.getSetCookie()[0]!.split(';')[0]!

      const total = 1000
      const batch = 50
      const status = new Map<string, number | 'no answer'>()
      for (let from = 0; from < total; from += batch) {
        if (crash && from === total / 2) {
          // Killed while a batch is in flight on it; the adds it had not answered have no answer.
          const victim = apps[1]!
          const inFlight = Array.from({ length: batch }, (_, i) => `crash-${i}`)
          const pending = inFlight.map((item) =>
            add(victim, cookie, item).then((s) => status.set(item, s)),
          )
          victim.run.child.kill('SIGKILL')
          await Promise.all(pending)
          await victim.run.exit
          apps[1] = await startApp(dir) // a restart, as a supervisor would do
        }
        const items = Array.from(
          { length: Math.min(batch, total - from) },
          (_, i) => `item-${from + i}`,
        )
        await Promise.all(
          items.map((item, i) => add(apps[i % 2]!, cookie, item).then((s) => status.set(item, s))),
        )
      }

      const stored = await cart(apps[0]!, cookie)
      expect(await cart(apps[1]!, cookie)).toEqual(stored)
      const counts: Record<string, number> = {}
      for (const [item, s] of status) {
        counts[String(s)] = (counts[String(s)] ?? 0) + 1
        if (s === 200) expect([item, stored.has(item)]).toEqual([item, true])
        else if (s !== 'no answer') expect([item, s, stored.has(item)]).toEqual([item, 503, false])
      }
      console.log(
        `two apps ${crash ? 'with a kill -9 and a restart' : 'with no fault'}: answers ${JSON.stringify(counts)}; ${stored.size} items stored; 5xx said ${[...reasons].join(' | ') || 'nothing'}`,
      )
      // With no fault, contention alone refuses nothing: every add is answered 200.
      if (!crash) expect(counts).toEqual({ 200: total })
      // Every request on a live process was answered; only the killed one's in-flight adds may not be.
      for (const [item, s] of status)
        if (s === 'no answer') expect(item.startsWith('crash-')).toBe(true)

      // Both stop; what a killed writer left in tmp/ went when its successor started.
      for (const app of apps) app.run.child.kill('SIGTERM')
      await Promise.all(apps.map((app) => app.run.exit))
      expect(readdirSync(join(dir, 'tmp'))).toEqual([])
      expect(readdirSync(join(dir, 'locks'))).toEqual([])
      expect(readdirSync(join(dir, 'sessions'))).toHaveLength(1)
    },
  )
})
