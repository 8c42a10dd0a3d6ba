/**
 * FileStore's commit point: a save with a deadline lands before it or not at all, and a save that
 * skips re-reading the file under the lock still sees every other writer.
 */
import { spawnSync } from 'node:child_process'
import { createHash, randomUUID } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileStore } from '../../entries/file'
import { newChange } from '../store-conformance'
import { fifoGate, waitUntil } from '../support/fs-gate'

const root = mkdtempSync(join(tmpdir(), 'concord-file-commit-'))
const stores: FileStore[] = []
let n = 0
function make(options: Partial<ConstructorParameters<typeof FileStore>[0]> = {}): FileStore {
  const store = new FileStore({ dir: join(root, `store-${n++}`), ...options })
  stores.push(store)
  return store
}
afterAll(async () => {
  for (const s of stores) await s.close()
  rmSync(root, { recursive: true, force: true })
})

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')
const sessionFile = (store: FileStore, id: string) =>
  join(store.dir, 'sessions', `${sha256(id)}.json`)

describe('FileStore save deadlines', () => {
  it('refuses a save whose deadline has passed, with ETIMEDOUT, and changes nothing', async () => {
    const store = make()
    const id = randomUUID()
    await store.save(id, newChange({ set: { a: '1' } }))
    const err = await store
      .save(id, { ...newChange({ set: { b: '2' } }), expectedVersion: 1, deadline: Date.now() - 1 })
      .catch((e: unknown) => e)
    expect(err).toMatchObject({ status: 503, code: 'ETIMEDOUT' })
    expect(await store.load(id)).toMatchObject({ version: 1, data: { a: '1' } })
    expect(readdirSync(join(store.dir, 'tmp'))).toEqual([])
    expect(readdirSync(join(store.dir, 'locks'))).toEqual([])
  })

  it("stops waiting for another process's lock at the deadline, not at lockTimeout, and leaves that lock alone", async () => {
    const store = make({ lockTimeout: 600_000, staleLockTimeout: 600_000 })
    const id = randomUUID()
    await store.save(id, newChange())
    // A holder in another PID namespace with a fresh lease: it can only be waited for.
    const lock = join(store.dir, 'locks', sha256(id))
    const text = `c1.1.ffffffffffff.0123456789ab.${Date.now().toString(36)}.1`
    symlinkSync(text, lock)
    const err = await store
      .save(id, {
        ...newChange({ set: { b: '2' } }),
        expectedVersion: 1,
        deadline: Date.now() + 100,
      })
      .catch((e: unknown) => e)
    expect(err).toMatchObject({ status: 503, code: 'ETIMEDOUT' })
    expect((err as Error).message).toMatch(/deadline passed while it waited/)
    expect(readdirSync(join(store.dir, 'locks'))).toEqual([sha256(id)])
    expect(spawnSync('readlink', [lock], { encoding: 'utf8' }).stdout.trim()).toBe(text)
  })

  it('does not apply a save that reaches its deadline inside the lock, before its rename', async () => {
    const store = make()
    const id = randomUUID()
    await store.save(id, newChange({ set: { a: '1' } }))
    // The save stops inside its lock at the user index entry (a FIFO) until its deadline is past.
    const gate = fifoGate(join(store.dir, 'users', sha256('u'), sha256(id)))
    const deadline = Date.now() + 200
    const saving = store
      .save(id, { ...newChange({ set: { b: '2' }, userId: 'u' }), expectedVersion: 1, deadline })
      .catch((e: unknown) => e)
    await gate.reached(join(store.dir, 'locks', sha256(id)))
    await waitUntil(() => Date.now() > deadline)
    await gate.open()
    const err = await saving
    expect(err).toMatchObject({ status: 503, code: 'ETIMEDOUT' })
    expect((err as Error).message).toMatch(
      /reached its deadline before it was written; it was not applied/,
    )

    expect(await store.load(id)).toMatchObject({ version: 1, data: { a: '1' } })
    expect(readdirSync(join(store.dir, 'tmp'))).toEqual([])
    expect(readdirSync(join(store.dir, 'locks'))).toEqual([])
    // The index entry made before the write points at a session that is not the user's: pruned when read.
    expect(await store.listByUser('u')).toEqual([])
    expect(readdirSync(join(store.dir, 'users', sha256('u')))).toEqual([])
    // The next save, in time, lands.
    expect(
      await store.save(id, {
        ...newChange({ set: { b: '2' } }),
        expectedVersion: 1,
        deadline: Date.now() + 60_000,
      }),
    ).toEqual({ ok: true, version: 2 })
  })
})

describe('FileStore save without a second read', () => {
  /** Waits until the session file was born long enough ago for a load's view of it to be trusted. */
  async function settled(store: FileStore, id: string): Promise<void> {
    await waitUntil(() => Date.now() - statSync(sessionFile(store, id)).birthtimeMs > 100)
  }

  it("still sees another store's saves (new inodes, numbers reused) and destroys between a load and a save", async () => {
    const a = make()
    const b = new FileStore({ dir: a.dir })
    stores.push(b)
    const id = randomUUID()
    await a.save(id, newChange({ set: { n: '0' } }))
    let version = 1
    for (let round = 0; round < 8; round++) {
      await settled(a, id)
      const loaded = (await a.load(id, { touchAt: Date.now() }))!
      // Three saves by the other store: each renames a new inode over the name and frees the
      // previous one, whose number the next file may get again.
      for (let i = 0; i < 3; i++) {
        const r = await b.save(id, {
          ...newChange({ set: { n: `b${round}.${i}` } }),
          expectedVersion: version,
        })
        expect(r).toEqual({ ok: true, version: ++version })
      }
      const result = await a.save(id, {
        ...newChange({ set: { n: 'a' } }),
        expectedVersion: loaded.version,
      })
      expect(result).toMatchObject({
        ok: false,
        reason: 'conflict',
        current: { version, data: { n: `b${round}.2` } },
      })
    }

    await settled(a, id)
    const loaded = (await a.load(id))!
    await b.destroy(id)
    expect(await a.save(id, { ...newChange(), expectedVersion: loaded.version })).toEqual({
      ok: false,
      reason: 'gone',
    })
    expect(await b.load(id)).toBeNull()
  })

  it('takes a touch made in between from the stat: the save keeps the data and goes through', async () => {
    const a = make()
    const b = new FileStore({ dir: a.dir })
    stores.push(b)
    const id = randomUUID()
    await a.save(id, newChange({ set: { n: '0', keep: '1' } }))
    await settled(a, id)
    const loaded = (await a.load(id))!
    await b.touch(id, Date.now() + 7_200_000)
    expect(
      await a.save(id, { ...newChange({ set: { n: 'a' } }), expectedVersion: loaded.version }),
    ).toEqual({ ok: true, version: 2 })
    expect((await b.load(id))!.data).toEqual({ n: 'a', keep: '1' })
  })

  const hasStrace = spawnSync('strace', ['-V']).status === 0
  ;(hasStrace ? it : it.skip)(
    'opens a settled file once for a load and a save: the save only stats it (strace)',
    () => {
      const dir = join(root, `strace-${randomUUID()}`)
      const id = randomUUID()
      const script = `
      const { FileStore } = require(${JSON.stringify(join(__dirname, '../../entries/file.ts'))});
      const { accessSync, statSync } = require('node:fs');
      const file = ${JSON.stringify(join(dir, 'sessions', `${sha256(id)}.json`))};
      const change = (set, expectedVersion) => ({ set, unset: [], cookie: {}, createdAt: Date.now(), expiresAt: Date.now() + 3600e3, idleTimeout: 3600e3, userId: null, expectedVersion });
      (async () => {
        const store = new FileStore({ dir: ${JSON.stringify(dir)} });
        await store.save(${JSON.stringify(id)}, change({ a: '1' }, null));
        while (Date.now() - statSync(file).birthtimeMs < 100) await new Promise((r) => setTimeout(r, 10));
        try { accessSync(${JSON.stringify(join(dir, 'MARK'))}) } catch {}
        const record = await store.load(${JSON.stringify(id)}, { touchAt: Date.now() });
        const result = await store.save(${JSON.stringify(id)}, change({ b: '2' }, record.version));
        if (!result.ok) process.exit(2);
        await store.close();
      })().catch((e) => { console.error(e); process.exit(1) })`
      const trace = join(root, `strace-${id}.txt`)
      const run = spawnSync(
        'strace',
        [
          '-f',
          '-o',
          trace,
          '-e',
          'trace=%file,%desc',
          process.execPath,
          '--import',
          'tsx',
          '-e',
          script,
        ],
        {
          cwd: join(__dirname, '../..'),
          encoding: 'utf8',
        },
      )
      expect(run.stderr).toBe('')
      expect(run.status).toBe(0)
      const lines = readFileSync(trace, 'utf8').split('\n')
      const after = lines.slice(lines.findIndex((l) => l.includes('MARK')))
      const onFile = after
        .filter((l) => l.includes(`sessions/${sha256(id)}.json`))
        .map((l) => /^\d+ +(\w+)\(/.exec(l)?.[1])
      // The load's open, the save's stat, and the rename that commits (its target is the file).
      expect(onFile).toEqual([
        'openat',
        expect.stringMatching(/^(statx|newfstatat|stat)$/),
        'rename',
      ])
    },
  )
})
