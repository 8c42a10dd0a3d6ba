/**
 * The bench runs its systems and its lifecycle measurements as children from a compiled tree
 * (bench/build.ts). When that tree misses what a child imports (as when the package entries
 * moved to entries/ and the build did not follow), the bench must fail, not run without it:
 * these start the children the way a run does and send each one request. No timing: each test
 * waits for the child's ready signal or its exit.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { buildTree } from '../bench/build'
import { startServer, type ServerChild } from '../bench/children'
import { agent, send } from '../bench/http'
import { runChild } from '../bench/lifecycle'
import type { AtRestRow, ObserverRow, TouchResult } from '../bench/lifecycle-child'

// A loaded machine compiles the tree and starts node slowly; nothing here waits on a clock.
jest.setTimeout(300_000)

// Inside the repository, as a run's tree is, so the children find node_modules.
const scratch = join(__dirname, '..', 'bench', '.tmp')
mkdirSync(scratch, { recursive: true })
const root = mkdtempSync(join(scratch, 'test-tree-'))
let buildDir = ''
const children: ServerChild[] = []

beforeAll(() => {
  buildDir = buildTree(join(root, 'tree'))
})

afterAll(async () => {
  for (const child of children) await child.stop()
  agent.destroy()
  rmSync(root, { recursive: true, force: true })
})

describe('the compiled server children', () => {
  it.each(['concord-memory', 'limit'] as const)('%s starts and answers', async (system) => {
    const child = await startServer(buildDir, { system })
    children.push(child)
    const login = await send(child.url, 'POST', '/login?u=7&items=2')
    expect(login.status).toBe(200)
    expect(login.cookies).toHaveLength(1)
    const cart = await send(child.url, 'GET', '/cart', login.cookies[0])
    expect(cart.status).toBe(200)
    expect(JSON.parse(cart.body)).toEqual({ user: 'user-7', items: { 'sku-0': 1, 'sku-1': 1 } })
  })

  it('a tree without entries/ fails to start the child, rather than hanging or passing', async () => {
    const broken = join(root, 'broken')
    cpSync(buildDir, broken, {
      recursive: true,
      filter: (path) => path !== join(buildDir, 'entries'),
    })
    await expect(startServer(broken, { system: 'concord-memory' })).rejects.toThrow(
      /concord-memory server (exited before it was ready|failed)/,
    )
  })

  it('a system that cannot be built reports why', async () => {
    // The file systems need a directory from the orchestrator.
    await expect(startServer(buildDir, { system: 'concord-file' })).rejects.toThrow(
      /concord-file server failed:[\s\S]*dir is required/,
    )
  })
})

describe('the compiled lifecycle child', () => {
  it('counts one futimes per read without touchAfter, and none within touchAfter', async () => {
    const result = await runChild<TouchResult>(buildDir, {
      type: 'touch',
      store: 'file',
      reads: 10,
      rounds: 2,
      warmup: 2,
      // 12 reads 1 s apart on the session's clock move the expiry by 12 s: under touchAfter.
      spacingMs: 1000,
      touchAfterMs: 60_000,
      dir: join(root, 'lifecycle-file'),
    })
    const [every, throttled] = result.variants
    expect(every).toMatchObject({ touchAfterMs: null, reads: 10, writes: 10 })
    expect(every!.writesBy).toEqual({ futimes: 10 })
    expect(every!.lagMs).toBe(0)
    expect(throttled).toMatchObject({ touchAfterMs: 60_000, reads: 10, writes: 0 })
    expect(throttled!.lagMs).toBe(12_000)
  })

  it('sees the tracing subscriber called on every traced store call', async () => {
    const rows = await runChild<ObserverRow[]>(buildDir, {
      type: 'tracing',
      requests: 32,
      rounds: 1,
      warmup: 16,
    })
    expect(rows.map((r) => [r.workload, r.seenPerOp])).toEqual([
      ['read', 1],
      ['write', 2],
    ])
  })

  it('sees the onEvent listener get a created and a destroyed event per sign-in + sign-out', async () => {
    const rows = await runChild<ObserverRow[]>(buildDir, {
      type: 'events',
      requests: 32,
      rounds: 1,
      warmup: 16,
    })
    expect(rows.map((r) => [r.workload, r.seenPerOp])).toEqual([
      ['read', 0],
      ['sign-in + sign-out', 2],
    ])
  })

  it('finds every session stored as its at-rest setting says, and times each setting', async () => {
    const rows = await runChild<AtRestRow[]>(buildDir, {
      type: 'at-rest',
      requests: 32,
      rounds: 2,
      warmup: 16,
    })
    expect(rows.map((r) => [r.workload, r.mode, r.storedAsSaid, r.diffUs === null])).toEqual([
      ['read', 'raw', 1, true],
      ['read', 'hashed', 1, false],
      ['read', 'encrypted', 1, false],
      ['write', 'raw', 1, true],
      ['write', 'hashed', 1, false],
      ['write', 'encrypted', 1, false],
    ])
    for (const r of rows) {
      expect(Number.isFinite(r.us) && r.us > 0).toBe(true)
      if (r.diffUs !== null) expect(Number.isFinite(r.diffUs)).toBe(true)
      expect(r).toMatchObject({ opsPerRound: 32, rounds: 2 })
    }
  })

  it('fails with the reason on a job it does not know', async () => {
    await expect(runChild(buildDir, { type: 'nonsense' } as never)).rejects.toThrow(
      /lifecycle nonsense measurement failed \(exit code 1\):[\s\S]*unknown job/,
    )
  })
})
