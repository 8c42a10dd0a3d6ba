/**
 * FileStore under real faults: a process that holds session locks is killed with kill -9 (in this
 * PID namespace, and in a new one made with `unshare --pid --fork`, where its pid cannot be
 * checked), or frozen long enough to lose its lease. The holder is stopped inside its locks by a
 * gate: a FIFO where its user index entry goes, so its saves wait in open() until the test says.
 *
 * For each fault: every save is answered by its deadline (with a margin load cannot cross), no
 * save answered with an error is present afterwards, no save answered ok is missing, and a
 * destroyed session stays destroyed.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash, randomUUID } from 'node:crypto'
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
} from 'node:fs'
import { constants } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { SaveResult } from '../../lib/store'
import { StoreError } from '../../lib/store'
import { FileStore } from '../../entries/file'
import { newChange } from '../store-conformance'
import { killAll, run, type Run } from '../support/child-process'

jest.setTimeout(120_000)

const REPO = join(__dirname, '..', '..')
const WORKER = join(REPO, 'test', 'fixtures', 'file-store-worker.ts')
const root = mkdtempSync(join(tmpdir(), 'concord-file-faults-'))
const stores: FileStore[] = []
afterAll(async () => {
  killAll()
  for (const s of stores) await s.close()
  rmSync(root, { recursive: true, force: true })
})

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
/** Generous: a save settles within this of its deadline however loaded the machine is. */
const MARGIN = 3000

/** Threads of `pid` blocked in openat(2) (syscall 257 on x86-64, 56 on arm64), from /proc. */
function threadsInOpenat(pid: number): number {
  const openat = process.arch === 'arm64' ? '56' : '257'
  let blocked = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const call = readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8').split(' ')[0]
      if (call === openat) blocked++
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return blocked
}

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(5)
}

function lockText(path: string): string | undefined {
  try {
    return lstatSync(path).isSymbolicLink() ? readlinkSync(path) : undefined
  } catch {
    return undefined
  }
}

/** `unshare --pid --fork` works here (root, or a user namespace allowed); probed once. */
const canUnshare =
  spawnSync('unshare', ['--pid', '--fork', 'true'], { stdio: 'ignore' }).status === 0
if (!canUnshare)
  console.warn(
    'FileStore PID-namespace fault test skipped: `unshare --pid --fork` is not available here (needs root)',
  )

interface Holder {
  run: Run
  /** The host pid of the node process that holds the locks. */
  pid: number
  /** The lock texts it holds, by session id. */
  texts: Map<string, string>
  /** The FIFOs its saves stop at. */
  gates: string[]
}

/**
 * Starts a worker that takes the locks of `ids` and stops inside them, at a FIFO gate per session.
 * With `namespace`, it runs as pid 1 of a new PID namespace.
 */
async function holder(
  dir: string,
  ids: string[],
  lease: number,
  namespace: boolean,
): Promise<Holder> {
  const userId = `holder-${randomUUID()}`
  mkdirSync(join(dir, 'users', sha256(userId)), { recursive: true })
  const gates = ids.map((id) => join(dir, 'users', sha256(userId), sha256(id)))
  for (const gate of gates) execFileSync('mkfifo', [gate])
  const argv = [process.execPath, '--import', 'tsx', WORKER, 'hold', dir, userId, ids.join(',')]
  // Each gated save keeps a libuv thread in open(); the lease renewals need threads of their own.
  const env = { LEASE: String(lease), UV_THREADPOOL_SIZE: String(ids.length + 8) }
  const started = run(namespace ? ['unshare', '--pid', '--fork', '--kill-child', ...argv] : argv, {
    cwd: REPO,
    env,
  })
  const texts = new Map<string, string>()
  await waitUntil(() => {
    for (const id of ids) {
      const text = lockText(join(dir, 'locks', sha256(id)))
      if (text !== undefined) texts.set(id, text)
    }
    return texts.size === ids.length || started.child.exitCode !== null
  })
  if (texts.size !== ids.length)
    throw new Error(`holder exited early: ${(await started.exit).stderr}`)
  const pids = new Set([...texts.values()].map((t) => Number(t.split('.')[1])))
  expect(pids.size).toBe(1)
  let pid = started.child.pid!
  if (namespace) {
    // The holder is the unshare process's child; in its own namespace it is pid 1.
    expect([...pids]).toEqual([1])
    pid = Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0])
  } else {
    expect([...pids]).toEqual([pid])
  }
  // Holding the locks is not enough: on a loaded machine the holder may not have reached its
  // gates yet. Wait until one of its threads is blocked opening each gate (a FIFO with no reader).
  await waitUntil(() => threadsInOpenat(pid) >= ids.length || started.child.exitCode !== null)
  return { run: started, pid, texts, gates }
}

interface Outcome {
  id: string
  key: string
  result?: SaveResult
  error?: StoreError
  deadline: number
  settledAt: number
}

/** Loads and saves one new key with a deadline, as a request does; records what it was told. */
async function request(
  store: FileStore,
  id: string,
  key: string,
  budget: number,
): Promise<Outcome | null> {
  const record = await store.load(id)
  if (!record) return null
  const deadline = Date.now() + budget
  const change = {
    ...newChange({ set: { [key]: '1' } }),
    createdAt: record.createdAt,
    expectedVersion: record.version,
    deadline,
  }
  const done = await store.save(id, change).then(
    (result) => ({ result }),
    (error: StoreError) => ({ error }),
  )
  return { id, key, ...done, deadline, settledAt: Date.now() }
}

describe.each([
  ['in this PID namespace', false],
  ['in a new PID namespace (unshare --pid --fork)', true],
])('FileStore: a lock holder killed with kill -9 %s', (_name, namespace) => {
  const maybe = namespace && !canUnshare ? it.skip : it
  const lease = 1500

  maybe(
    'blocks its sessions for about the lease at most; every save is answered by its deadline, and what it was told is what is stored',
    async () => {
      const dir = join(root, `kill-${namespace ? 'ns' : 'local'}-${randomUUID()}`)
      const store = new FileStore({ dir, staleLockTimeout: lease, lockTimeout: 20_000 })
      stores.push(store)
      const ids = Array.from({ length: 6 }, () => randomUUID())
      for (const id of ids) await store.save(id, newChange({ set: { start: '1' } }))
      const held = ids.slice(0, 4)
      const destroyed = held[3]!
      const h = await holder(dir, held, lease, namespace)

      // Alive, it renews its leases: a waiter gives up on it rather than break it, over three leases.
      const waiter = new FileStore({ dir, staleLockTimeout: lease, lockTimeout: 3 * lease })
      stores.push(waiter)
      const refused = await waiter
        .save(held[0]!, { ...newChange({ set: { early: '1' } }), expectedVersion: 1 })
        .catch((e: unknown) => e)
      expect(refused).toMatchObject({ status: 503, code: 'ETIMEDOUT' })
      for (const id of held) expect(lockText(join(dir, 'locks', sha256(id)))).toBe(h.texts.get(id))

      process.kill(h.pid, 'SIGKILL')
      const killedAt = Date.now()
      await h.run.exit

      // A logout of a held session, issued at once: it waits for the lock, then stays done.
      const destroying = store.destroy(destroyed)
      // Requests on every session, in rounds, until each held one has been saved again.
      const outcomes: Outcome[] = []
      const firstOk = new Map<string, number>()
      for (
        let round = 0;
        firstOk.size < ids.length - 1 && Date.now() - killedAt < 10 * lease + 20_000;
        round++
      ) {
        const results = await Promise.all(
          ids.filter((id) => id !== destroyed).map((id) => request(store, id, `r${round}`, 500)),
        )
        for (const o of results) {
          if (!o) continue
          outcomes.push(o)
          if (o.result?.ok && !firstOk.has(o.id)) firstOk.set(o.id, o.settledAt - killedAt)
        }
      }
      await destroying
      console.log(
        `kill -9 ${namespace ? 'in a new PID namespace' : 'in this namespace'}: held sessions writable again after ` +
          held
            .slice(0, 3)
            .map((id) => `${firstOk.get(id)} ms`)
            .join(', ') +
          ` (lease ${lease} ms); ${outcomes.filter((o) => o.error).length} of ${outcomes.length} saves answered 503 meanwhile`,
      )

      // Every held session is writable again, within the lease and a margin (a 30 s stale-lock wait would not be).
      for (const id of ids.filter((i) => i !== destroyed)) {
        expect(firstOk.get(id)).toBeLessThan(lease + 2 * MARGIN)
      }
      // Every save was answered by its deadline, and said exactly what happened.
      for (const o of outcomes) {
        expect(o.settledAt - o.deadline).toBeLessThan(MARGIN)
        if (o.error) expect(o.error).toMatchObject({ status: 503, code: 'ETIMEDOUT' })
        else expect(o.result).toMatchObject({ ok: true })
      }
      for (const id of ids.filter((i) => i !== destroyed)) {
        const record = (await store.load(id))!
        for (const o of outcomes.filter((x) => x.id === id)) {
          if (o.result?.ok) expect(record.data[o.key]).toBe('1')
          else expect(record.data[o.key]).toBeUndefined()
        }
        expect(record.data['held']).toBeUndefined() // the killed holder's saves never landed
        expect(record.data['early']).toBeUndefined()
      }
      expect(await store.load(destroyed)).toBeNull() // and the logout stayed a logout

      // A process starting on the directory finds nothing left by the dead one.
      await store.reap()
      expect(readdirSync(join(dir, 'locks'))).toEqual([])
      expect(readdirSync(join(dir, 'tmp'))).toEqual([])
    },
  )
})

describe('FileStore: a holder frozen past its lease', () => {
  it('loses the lock to a waiter, and when it wakes applies nothing: its saves fail with ETIMEDOUT', async () => {
    const lease = 2000
    const dir = join(root, `frozen-${randomUUID()}`)
    const store = new FileStore({ dir, staleLockTimeout: lease })
    stores.push(store)
    const ids = [randomUUID(), randomUUID()]
    for (const id of ids) await store.save(id, newChange({ set: { start: '1' } }))
    const h = await holder(dir, ids, lease, false)
    h.run.child.kill('SIGSTOP')
    const gates: FileHandle[] = []
    try {
      // Frozen, it renews nothing: a waiter breaks each lock once the lease has run out.
      for (const id of ids) {
        expect(
          await store.save(id, { ...newChange({ set: { parent: '1' } }), expectedVersion: 1 }),
        ).toEqual({ ok: true, version: 2 })
      }
      // Open the gates (without waiting for the other end: it may not have reached them), then wake it.
      for (const gate of h.gates)
        gates.push(await open(gate, constants.O_RDONLY | constants.O_NONBLOCK))
    } finally {
      h.run.child.kill('SIGCONT')
    }
    const { code, stdout } = await h.run.exit
    for (const gate of gates) await gate.close()
    expect(code).toBe(0)
    const outcomes = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; error?: string; code?: string })
    expect(outcomes).toHaveLength(2)
    for (const o of outcomes) {
      expect(o.code).toBe('ETIMEDOUT')
      expect(o.error).toMatch(/could not renew its lock/)
    }
    for (const id of ids) {
      const record = (await store.load(id))!
      expect(record.version).toBe(2)
      expect(record.data).toEqual({ start: '1', parent: '1' })
    }
    expect(readdirSync(join(dir, 'tmp'))).toEqual([])
  })
})
