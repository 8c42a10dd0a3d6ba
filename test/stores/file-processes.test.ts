/**
 * FileStore across real processes: kill -9 during writes, several processes on one session,
 * the per-user index under concurrent owners, crashed and hung lock holders, and reaping 20k
 * files under a low open-file limit. Children run test/fixtures/file-store-worker.ts with tsx.
 */
import { spawnSync } from 'node:child_process'
import { createHash, randomUUID } from 'node:crypto'
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { SessionChange } from '../../lib/store'
import { StoreError } from '../../lib/store'
import { FileStore } from '../../entries/file'
import { churnUsers, hammer } from '../fixtures/file-store-worker'
import { newChange } from '../store-conformance'
import { killAll, run, type Run } from '../support/child-process'

jest.setTimeout(60_000)

const REPO = join(__dirname, '..', '..')
const WORKER = join(REPO, 'test', 'fixtures', 'file-store-worker.ts')
const root = mkdtempSync(join(tmpdir(), 'concord-file-proc-'))
const stores: FileStore[] = []
let n = 0
function make(options: Partial<ConstructorParameters<typeof FileStore>[0]> = {}): FileStore {
  const store = new FileStore({ dir: join(root, `store-${n++}`), ...options })
  stores.push(store)
  return store
}
afterAll(async () => {
  killAll()
  for (const s of stores) await s.close()
  rmSync(root, { recursive: true, force: true })
})

const mounts: string[] = []
/** A fresh tmpfs, or null where mounting is not allowed (then the caller uses the temp dir's disk). */
function tmpfsOrNull(size: string): string | null {
  const dir = mkdtempSync(join(tmpdir(), 'concord-tmpfs-'))
  if (
    spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], {
      stdio: 'ignore',
    }).status !== 0
  ) {
    rmSync(dir, { recursive: true, force: true })
    return null
  }
  mounts.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of mounts) {
    spawnSync('umount', ['-l', dir], { stdio: 'ignore' })
    rmSync(dir, { recursive: true, force: true })
  }
})

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Starts the worker; with `maxOpenFiles`, under `ulimit -n`. */
function worker(args: string[], maxOpenFiles?: number): Run {
  const argv = [process.execPath, '--import', 'tsx', WORKER, ...args]
  return maxOpenFiles === undefined
    ? run(argv, { cwd: REPO })
    : run(['bash', '-c', `ulimit -n ${maxOpenFiles} && exec "$@"`, 'bash', ...argv], { cwd: REPO })
}

async function ok(run: Run): Promise<string> {
  const { code, stdout, stderr } = await run.exit
  if (code !== 0) throw new Error(`worker failed with ${code}: ${stderr}`)
  return stdout
}

const HOUR = 3_600_000

describe('FileStore atomic writes', () => {
  it('leaves only whole files when a writer is killed with SIGKILL in the middle of its write loop', async () => {
    const store = make()
    const ids = Array.from({ length: 3 }, () => randomUUID())
    const tmp = join(store.dir, 'tmp')
    for (let round = 0; round < 4; round++) {
      const run = worker(['write', store.dir, ids.join(','), String(1_000_000)])
      await run.line(/^ready$/)
      if (round % 2 === 0) {
        // Caught with a temp file half-written: stop it there, then kill it.
        for (;;) {
          if (readdirSync(tmp).length > 0) {
            run.child.kill('SIGSTOP')
            if (readdirSync(tmp).length > 0) break
            run.child.kill('SIGCONT')
          }
          await sleep(1)
        }
      } else {
        await sleep(Math.random() * 100) // wherever it happens to be
      }
      run.child.kill('SIGKILL')
      expect((await run.exit).signal).toBe('SIGKILL')
      if (round % 2 === 0) expect(readdirSync(tmp).length).toBeGreaterThan(0) // it did die mid-write

      // Every session file on disk parses, and its blob agrees with its size: never torn, never mixed.
      const files = readdirSync(join(store.dir, 'sessions'))
      expect(files).toHaveLength(ids.length)
      for (const name of files) {
        const file = JSON.parse(readFileSync(join(store.dir, 'sessions', name), 'utf8'))
        expect(JSON.parse(file.data.blob)).toHaveLength(Number(file.data.size))
      }

      // The dead writer's lock, if it held one, is broken at once (its pid is gone): every
      // session can be saved again well within lockTimeout.
      for (const id of ids) {
        const record = await store.load(id)
        expect(record).not.toBeNull()
        expect(JSON.parse(record!.data.blob!)).toHaveLength(Number(record!.data.size))
        const saved = await store.save(id, {
          ...newChange({ set: { checked: 'true' } }),
          createdAt: record!.createdAt,
          expectedVersion: record!.version,
        })
        expect(saved).toEqual({ ok: true, version: record!.version + 1 })
      }
      expect(readdirSync(join(store.dir, 'locks'))).toEqual([])

      // A process starting on the directory clears the dead writer's temp files at once.
      const restarted = new FileStore({ dir: store.dir })
      await restarted.close() // resolves once its start-up sweep is done
      expect(readdirSync(tmp)).toEqual([])
    }
  })
})

describe('FileStore across processes', () => {
  it('loses no key when two child processes and the parent hammer one session', async () => {
    const store = make()
    const id = randomUUID()
    await store.save(id, newChange({ set: { start: '0' } }))
    const perWorker = 60
    const runs = [
      worker(['hammer', store.dir, id, 'child-a', String(perWorker)]),
      worker(['hammer', store.dir, id, 'child-b', String(perWorker)]),
    ]
    const parentConflicts = await hammer(store, id, 'parent', perWorker)
    const outputs = await Promise.all(runs.map(ok))

    const record = await store.load(id)
    const keys = Object.keys(record!.data).sort()
    const expected = ['start']
    for (const prefix of ['child-a', 'child-b', 'parent'])
      for (let i = 0; i < perWorker; i++) expected.push(`${prefix}-${i}`)
    expect(keys).toEqual(expected.sort())
    expect(record!.version).toBe(1 + 3 * perWorker)
    const conflicts =
      parentConflicts +
      outputs.reduce((sum, out) => sum + (JSON.parse(out) as { conflicts: number }).conflicts, 0)
    console.log(
      `hammer: ${3 * perWorker} saves from 3 processes, ${conflicts} version conflicts retried`,
    )
    expect(readdirSync(join(store.dir, 'locks'))).toEqual([])
  })

  it('keeps the per-user index exact while three processes create, move and destroy sessions of the same users', async () => {
    const store = make()
    const [userA, userB] = [`a-${randomUUID()}`, `b-${randomUUID()}`]
    const count = 45
    const runs = ['one', 'two'].map((p) =>
      worker(['users', store.dir, p, String(count), userA, userB]),
    )
    const mine = await churnUsers(store, 'parent', count, userA, userB)
    const theirs = (await Promise.all(runs.map(ok))).map(
      (out) => JSON.parse(out) as { a: string[]; b: string[] },
    )
    const all = [mine, ...theirs]
    const a = all.flatMap((l) => l.a).sort()
    const b = all.flatMap((l) => l.b).sort()
    expect(a).toHaveLength(45)
    expect(b).toHaveLength(45)

    expect((await store.listByUser(userA)).sort()).toEqual(a)
    expect((await store.listByUser(userB)).sort()).toEqual(b)
    // On disk too: one entry per live session, no more (listByUser has nothing to prune).
    expect(readdirSync(join(store.dir, 'users', sha256(userA))).sort()).toEqual(
      a.map(sha256).sort(),
    )
    expect(readdirSync(join(store.dir, 'users', sha256(userB))).sort()).toEqual(
      b.map(sha256).sort(),
    )
    expect(await store.count()).toBe(90)

    expect(await store.destroyByUser(userA)).toBe(45)
    expect(await store.listByUser(userA)).toEqual([])
    expect((await store.listByUser(userB)).sort()).toEqual(b)
    expect(await store.count()).toBe(45)
  })
})

describe('FileStore locks held by other processes', () => {
  /**
   * Starts a writer on one session and freezes it (SIGSTOP) while it holds the session's lock.
   * Frozen, it is a live holder; killed, a crashed one.
   */
  async function frozenHolder(dir: string, id: string): Promise<Run> {
    const run = worker(['write', dir, id, String(8_000_000)])
    await run.line(/^ready$/)
    const lock = join(dir, 'locks', sha256(id))
    for (;;) {
      if (lockExists(lock)) {
        run.child.kill('SIGSTOP')
        // Stopped while holding it (not released in the instant before the stop).
        if (lockExists(lock)) return run
        run.child.kill('SIGCONT')
      }
      await sleep(1)
    }
  }

  function change(version: number): SessionChange {
    return {
      ...newChange({ set: { parent: 'true' } }),
      expectedVersion: version,
      expiresAt: Date.now() + HOUR,
    }
  }

  it('waits for a live holder and fails with a 503 after lockTimeout; breaks the lock at once when the holder dies', async () => {
    const dir = join(root, `held-${randomUUID()}`)
    const id = randomUUID()
    const holder = await frozenHolder(dir, id)
    const store = new FileStore({ dir, lockTimeout: 300 })
    stores.push(store)
    const version = (await store.load(id))!.version // reads need no lock

    const err = await store.save(id, change(version)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StoreError)
    expect(err).toMatchObject({ status: 503, code: 'ETIMEDOUT' })

    holder.child.kill('SIGKILL')
    await holder.exit
    const lock = join(dir, 'locks', sha256(id))
    expect(lockExists(lock)).toBe(true) // the crashed holder's lock is still there
    expect(readlinkSync(lock)).toMatch(new RegExp(`^c1\\.${holder.child.pid}\\.`)) // a symlink naming its holder
    expect(await store.save(id, change(version))).toEqual({ ok: true, version: version + 1 })
    expect(readdirSync(join(dir, 'locks'))).toEqual([])
  })

  it('breaks a lock not renewed for staleLockTimeout even if its holder still runs (a frozen process)', async () => {
    const dir = join(root, `hung-${randomUUID()}`)
    const id = randomUUID()
    const holder = await frozenHolder(dir, id)
    try {
      // A lease long enough for the parent's own save of a file of megabytes on a loaded machine.
      const store = new FileStore({ dir, staleLockTimeout: 1500 })
      stores.push(store)
      const version = (await store.load(id))!.version
      expect(await store.save(id, change(version))).toEqual({ ok: true, version: version + 1 })
    } finally {
      holder.child.kill('SIGKILL')
      await holder.exit
    }
  })
})

describe('FileStore reaping at scale', () => {
  it('reaps 20 000 expired session files in a process limited to 64 open files, without EMFILE', async () => {
    // On a tmpfs when this machine lets us mount one: 40 000 file creations on a journaling disk
    // take most of a minute, and the open-file limit does not care which file system it is.
    const mount = tmpfsOrNull('256m')
    const store = mount ? new FileStore({ dir: join(mount, 'sessions') }) : make()
    if (mount) stores.push(store)
    const live = randomUUID()
    await store.save(live, newChange({ userId: 'user-0' })) // makes the layout, and one session that must stay
    // Written directly in the documented layout (as 20k saves would be, only faster): the file
    // named by sha256(id), its mtime the expiry, and an entry in its user's index.
    const now = Date.now()
    const total = 20_000
    for (let u = 0; u < 50; u++)
      mkdirSync(join(store.dir, 'users', sha256(`user-${u}`)), { recursive: true })
    for (let i = 0; i < total; i++) {
      const id = randomUUID()
      const userId = `user-${i % 50}`
      const path = join(store.dir, 'sessions', `${sha256(id)}.json`)
      const file = {
        format: 1,
        id,
        version: 1,
        createdAt: now - HOUR,
        idleTimeout: HOUR,
        userId,
        cookie: {},
        data: { i: String(i) },
      }
      writeFileSync(path, JSON.stringify(file))
      utimesSync(path, now / 1000, (now - 1000 - i) / 1000)
      writeFileSync(join(store.dir, 'users', sha256(userId), sha256(id)), '')
    }
    expect(readdirSync(join(store.dir, 'sessions'))).toHaveLength(total + 1)
    expect(await store.count()).toBe(1)

    const out = await ok(worker(['reap', store.dir], 64))
    expect(JSON.parse(out)).toEqual({ removed: total })
    expect(readdirSync(join(store.dir, 'sessions'))).toEqual([`${sha256(live)}.json`])
    expect(readdirSync(join(store.dir, 'users'))).toEqual([sha256('user-0')])
    expect(readdirSync(join(store.dir, 'users', sha256('user-0')))).toEqual([sha256(live)])
    expect(await store.listByUser('user-0')).toEqual([live])
  })

  it("does not keep a process alive: the reap timer is unref'd", async () => {
    const run = worker(['idle', join(root, `idle-${randomUUID()}`)])
    expect((await run.exit).code).toBe(0)
  })
})

/** A lock is a symlink that points nowhere: existsSync (which follows it) would say no. */
function lockExists(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink()
  } catch {
    return false
  }
}
