/**
 * FileStore against real temp directories: no fs mocks. Failure cases use real mounts (tmpfs for
 * ENOSPC, a tmpfs remounted read-only for EROFS), because root ignores permission bits.
 * Multi-process cases live in file-processes.test.ts.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { createHash, randomUUID } from 'node:crypto'
import { createHook } from 'node:async_hooks'
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  lutimesSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { format } from 'node:util'
import createDebug from 'debug'
import { StoreError } from '../../lib/store'
import { FileStore } from '../../entries/file'
import { describeStore, newChange } from '../store-conformance'
import { fifoGate, waitUntil } from '../support/fs-gate'

const root = mkdtempSync(join(tmpdir(), 'concord-file-'))
const stores: FileStore[] = []
let n = 0
const freshDir = () => join(root, `store-${n++}`)
function make(options: Partial<ConstructorParameters<typeof FileStore>[0]> = {}): FileStore {
  const store = new FileStore({ dir: freshDir(), ...options })
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
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Everything under `dir`, as relative paths. */
function tree(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).sort()
}

/** Collects what the store logs through `debug`. */
function captureDebug(): { lines: string[]; stop(): void } {
  const lines: string[] = []
  const previousLog = createDebug.log
  const previousNamespaces = createDebug.disable()
  createDebug.enable('concord-session:*')
  createDebug.log = (...args: unknown[]) => {
    lines.push(format(...args))
  }
  return {
    lines,
    stop() {
      createDebug.log = previousLog
      createDebug.enable(previousNamespaces)
    },
  }
}

describeStore('FileStore', async () => make(), {
  lifecycle: { atLoad: 'idle and absolute', prune: (store) => (store as FileStore).reap() },
})

describe('FileStore options', () => {
  it('rejects bad options at construction, saying what to pass', () => {
    expect(() => new FileStore(undefined as never)).toThrow(/pass an options object with a dir/)
    expect(() => new FileStore({} as never)).toThrow(/dir must be a non-empty path/)
    expect(() => new FileStore({ dir: '' })).toThrow(/dir must be a non-empty path/)
    expect(() => new FileStore({ dir: 'a\0b' })).toThrow(/dir must be a non-empty path/)
    expect(() => new FileStore({ dir: root, reapInterval: 0 })).toThrow(
      /reapInterval must be a positive number of ms/,
    )
    expect(() => new FileStore({ dir: root, lockTimeout: -1 })).toThrow(
      /lockTimeout must be a positive number/,
    )
    expect(() => new FileStore({ dir: root, staleLockTimeout: NaN })).toThrow(
      /staleLockTimeout must be a positive number/,
    )
    expect(() => new FileStore({ dir: root, concurrency: 0 })).toThrow(
      /concurrency must be an integer from 1 to 1024/,
    )
    expect(() => new FileStore({ dir: root, fsync: 'yes' as never })).toThrow(
      /fsync must be true or false/,
    )
  })

  it('resolves dir to an absolute path once', () => {
    const store = new FileStore({ dir: 'relative/sessions' })
    expect(store.dir).toBe(join(process.cwd(), 'relative/sessions'))
    return store.close()
  })
})

describe('FileStore layout and path safety', () => {
  it('keeps one JSON file per session, named by the sha256 of the id, holding the JSON texts as strings', async () => {
    const store = make()
    const id = randomUUID()
    const now = Date.now()
    await store.save(
      id,
      newChange({
        set: { cart: '{"items":["tea"]}' },
        createdAt: now,
        expiresAt: now + 60_000,
        userId: 'u1',
      }),
    )
    expect(tree(store.dir)).toEqual([
      'corrupt',
      'locks',
      'sessions',
      `sessions/${sha256(id)}.json`,
      'tmp',
      'users',
      `users/${sha256('u1')}`,
      `users/${sha256('u1')}/${sha256(id)}`,
    ])
    const file = JSON.parse(readFileSync(sessionFile(store, id), 'utf8'))
    expect(file).toEqual({
      format: 1,
      id,
      version: 1,
      createdAt: now,
      idleTimeout: 3_600_000,
      userId: 'u1',
      cookie: {},
      data: { cart: '{"items":["tea"]}' },
    })
    // The file's mtime is the idle expiry; the mode keeps other users out.
    const st = statSync(sessionFile(store, id))
    expect(Math.round(st.mtimeMs)).toBe(now + 60_000)
    expect(st.mode & 0o777).toBe(0o600)
  })

  it('never builds a path from a hostile id: ../, absolute paths, NUL, separators and overlong ids', async () => {
    const parent = mkdtempSync(join(root, 'jail-'))
    const store = new FileStore({ dir: join(parent, 'sessions') })
    stores.push(store)
    await store.save(randomUUID(), newChange()) // make the layout
    const before = tree(parent)
    const hostile = [
      '../escape',
      '../../../../tmp/escape',
      '..',
      '.',
      '',
      '/etc/passwd',
      join(parent, 'absolute'),
      'a/b',
      'a\\b',
      'nul\0byte',
      'x'.repeat(257),
      'x'.repeat(100_000),
      '.hidden',
      'ümlaut',
    ]
    for (const id of hostile) {
      expect(await store.load(id)).toBeNull()
      await expect(store.touch(id, Date.now() + 1000)).resolves.toBeUndefined()
      await expect(store.destroy(id)).resolves.toBeUndefined()
      await expect(store.save(id, newChange())).rejects.toThrow(TypeError)
    }
    expect(tree(parent)).toEqual(before)
    expect(existsSync('/tmp/escape')).toBe(false)
  })

  it('accepts the longest valid id (256 characters), which a raw file name could not hold', async () => {
    const store = make()
    const id = 'a'.repeat(256)
    expect(await store.save(id, newChange({ set: { a: '1' } }))).toEqual({ ok: true, version: 1 })
    expect((await store.load(id))?.data).toEqual({ a: '1' })
  })

  it('hashes user ids too: a hostile user id stays inside users/', async () => {
    const store = make()
    const id = randomUUID()
    const user = '../../../outside\0/x'
    await store.save(id, newChange({ userId: user }))
    expect(readdirSync(join(store.dir, 'users'))).toEqual([sha256(user)])
    expect(await store.listByUser(user)).toEqual([id])
    expect(await store.destroyByUser(user)).toBe(1)
    expect(readdirSync(join(store.dir, 'users'))).toEqual([])
  })

  it('makes its directories again when they are removed while it runs', async () => {
    const store = make()
    await store.save(randomUUID(), newChange())
    rmSync(store.dir, { recursive: true })
    const id = randomUUID()
    expect(await store.save(id, newChange({ set: { a: '1' } }))).toEqual({ ok: true, version: 1 })
    expect((await store.load(id))?.data).toEqual({ a: '1' })
  })
})

describe('FileStore reading', () => {
  it('answers an unknown id with one failed open and nothing else: no retries, no log', async () => {
    const store = make()
    await store.save(randomUUID(), newChange()) // the directory exists: only the file is unknown
    const log = captureDebug()
    const fsOps: string[] = []
    const hook = createHook({
      init(_id, type) {
        if (type.startsWith('FSREQ') || type.startsWith('FILEHANDLE')) fsOps.push(type)
      },
    })
    try {
      hook.enable()
      const started = Date.now()
      const record = await store.load(randomUUID(), { touchAt: Date.now() })
      hook.disable()
      expect(record).toBeNull()
      expect(fsOps).toEqual(['FSREQCALLBACK']) // the open that failed with ENOENT (callback fs)
      expect(log.lines).toEqual([])
      expect(Date.now() - started).toBeLessThan(5000) // no back-off sleeps (generous: not a timing test)
    } finally {
      hook.disable()
      log.stop()
    }
  })

  const hasStrace = spawnSync('strace', ['-V']).status === 0
  ;(hasStrace ? it : it.skip)(
    'makes exactly one system call on the path of an unknown id (strace)',
    () => {
      const dir = freshDir()
      mkdirSync(join(dir, 'sessions'), { recursive: true })
      const id = randomUUID()
      const script = `
      const { FileStore } = require(${JSON.stringify(join(__dirname, '../../entries/file.ts'))});
      new FileStore({ dir: ${JSON.stringify(dir)} }).load(${JSON.stringify(id)}).then((r) => { if (r !== null) process.exit(2) })`
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
      expect(run.status).toBe(0)
      const calls = readFileSync(trace, 'utf8')
        .split('\n')
        .filter((line) => line.includes(sha256(id)))
      // One openat (strace may print its result on a later "resumed" line, which names no path).
      expect(calls).toHaveLength(1)
      expect(calls[0]).toMatch(/^\d+ +openat\(/)
    },
  )

  it('treats a corrupt file as missing, logs it through debug and moves it aside for inspection', async () => {
    const store = make()
    const id = randomUUID()
    await store.save(id, newChange({ set: { a: '1' } }))
    const path = sessionFile(store, id)
    const garbage = '{"format":1,"id":"' // a torn file, as a non-atomic writer would leave
    writeFileSync(path, garbage)
    const log = captureDebug()
    try {
      expect(await store.load(id)).toBeNull()
    } finally {
      log.stop()
    }
    expect(existsSync(path)).toBe(false)
    const aside = readdirSync(join(store.dir, 'corrupt'))
    expect(aside).toHaveLength(1)
    expect(aside[0]).toMatch(new RegExp(`^${sha256(id)}\\.\\d+\\.json$`))
    expect(readFileSync(join(store.dir, 'corrupt', aside[0]!), 'utf8')).toBe(garbage)
    expect(log.lines.join('\n')).toMatch(
      /concord-session:file .*is corrupt \(not JSON.*moved it to .*corrupt/,
    )
    // The id is free again: a new session can take it.
    expect(await store.save(id, newChange())).toEqual({ ok: true, version: 1 })
  })

  it('treats a file holding another id (copied or renamed by hand) as corrupt', async () => {
    const store = make()
    const [a, b] = [randomUUID(), randomUUID()]
    await store.save(a, newChange({ set: { owner: '"a"' } }))
    writeFileSync(sessionFile(store, b), readFileSync(sessionFile(store, a)))
    expect(await store.load(b)).toBeNull()
    expect(readdirSync(join(store.dir, 'corrupt'))).toHaveLength(1)
    expect((await store.load(a))?.data).toEqual({ owner: '"a"' })
  })

  it('a save over a corrupt file moves it aside too: gone for an update, a fresh record for a create', async () => {
    const store = make()
    const id = randomUUID()
    await store.save(id, newChange())
    writeFileSync(sessionFile(store, id), 'not json')
    expect(await store.save(id, newChange({ expectedVersion: 1 }))).toEqual({
      ok: false,
      reason: 'gone',
    })
    writeFileSync(sessionFile(store, id), '[]')
    expect(await store.save(id, newChange({ set: { a: '1' } }))).toEqual({ ok: true, version: 1 })
    expect(readdirSync(join(store.dir, 'corrupt'))).toHaveLength(2)
  })

  it('touches on load through the mtime alone: same bytes, same inode, same version', async () => {
    const store = make()
    const id = randomUUID()
    const now = Date.now()
    await store.save(
      id,
      newChange({ set: { a: '1' }, createdAt: now, expiresAt: now + 1000, idleTimeout: 60_000 }),
    )
    const path = sessionFile(store, id)
    const bytes = readFileSync(path)
    const { ino } = statSync(path)
    const touchAt = now + 500
    expect((await store.load(id, { touchAt }))?.expiresAt).toBe(touchAt + 60_000)
    expect(readFileSync(path)).toEqual(bytes)
    expect(statSync(path).ino).toBe(ino)
    expect(Math.round(statSync(path).mtimeMs)).toBe(touchAt + 60_000)
    await store.touch(id, now + 90_000)
    expect(readFileSync(path)).toEqual(bytes)
    expect((await store.load(id))?.expiresAt).toBe(now + 90_000)
  })

  it('keeps a key named __proto__ as an ordinary key, through a save that merges onto it', async () => {
    const store = make()
    const id = randomUUID()
    await store.save(id, newChange({ set: JSON.parse('{"__proto__":"{\\"polluted\\":true}"}') }))
    await store.save(id, newChange({ set: { other: '1' }, expectedVersion: 1 }))
    const record = await store.load(id)
    expect(Object.keys(record!.data).sort()).toEqual(['__proto__', 'other'])
    expect(record!.data['__proto__']).toBe('{"polluted":true}')
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('does not bring an expired session back with touch', async () => {
    const store = make()
    const id = randomUUID()
    const now = Date.now()
    await store.save(id, newChange({ createdAt: now, expiresAt: now - 1 }))
    await store.touch(id, now + 60_000)
    expect(await store.load(id)).toBeNull()
  })
})

describe('FileStore reaping and the user index', () => {
  it('reaps expired sessions on its own timer, with their index entries, and keeps live ones', async () => {
    const store = make({ reapInterval: 50 })
    const now = Date.now()
    const live = randomUUID()
    await store.save(live, newChange({ userId: 'u' }))
    for (let i = 0; i < 10; i++) {
      await store.save(
        randomUUID(),
        newChange({
          createdAt: now,
          expiresAt: now + 50,
          idleTimeout: 50,
          userId: i % 2 ? 'u' : 'v',
        }),
      )
    }
    for (let i = 0; i < 100 && readdirSync(join(store.dir, 'sessions')).length > 1; i++)
      await sleep(50)
    // A reap may be between a session's file and its index entry: join it (reap() joins a running one).
    await store.reap()
    expect(readdirSync(join(store.dir, 'sessions'))).toEqual([`${sha256(live)}.json`])
    expect(tree(join(store.dir, 'users'))).toEqual([sha256('u'), `${sha256('u')}/${sha256(live)}`])
    expect(await store.listByUser('u')).toEqual([live])
  })

  it('reap() clears temp files of a crashed writer and locks of a dead process, and reports what it removed', async () => {
    // The sessions are written with the default lease: a 100 ms lease could lapse mid-write on a
    // loaded machine. Only the reaping store judges files by the short one.
    const writer = make()
    const store = make({ dir: writer.dir, staleLockTimeout: 100 })
    const id = randomUUID()
    await writer.save(id, newChange())
    await writer.save(randomUUID(), newChange({ expiresAt: Date.now() - 1 }))
    // Half a write, named after a lock that is gone; and one in an unknown shape, older than the lease.
    writeFileSync(
      join(store.dir, 'tmp', `${sha256(id)}.c1.99999.ffffffffffff.0123456789ab.1.1`),
      '{"format":1,"i',
    )
    const odd = join(store.dir, 'tmp', `${sha256(id)}.99999.abcdef`)
    writeFileSync(odd, '{"format":1,"i')
    const lock = join(store.dir, 'locks', sha256(randomUUID()))
    writeFileSync(lock, '') // not a symlink: judged by its age alone
    await waitUntil(
      () => Date.now() - Math.max(statSync(odd).ctimeMs, statSync(lock).mtimeMs) > 150,
    )
    expect(await store.reap()).toBe(1)
    expect(readdirSync(join(store.dir, 'tmp'))).toEqual([])
    expect(readdirSync(join(store.dir, 'locks'))).toEqual([])
    expect(await store.count()).toBe(1)
  })

  it('prunes an index entry whose session is gone (a crash between the two unlinks) when it is read', async () => {
    const store = make()
    const [a, b] = [randomUUID(), randomUUID()]
    await store.save(a, newChange({ userId: 'u' }))
    await store.save(b, newChange({ userId: 'u' }))
    rmSync(sessionFile(store, b)) // as if the process died after unlinking the file
    expect(await store.listByUser('u')).toEqual([a])
    expect(readdirSync(join(store.dir, 'users', sha256('u')))).toEqual([sha256(a)])
  })

  it("lists a user's sessions oldest first", async () => {
    const store = make()
    const now = Date.now()
    const ids = [randomUUID(), randomUUID(), randomUUID()]
    await store.save(ids[1]!, newChange({ userId: 'u', createdAt: now - 1000 }))
    await store.save(ids[0]!, newChange({ userId: 'u', createdAt: now - 2000 }))
    await store.save(ids[2]!, newChange({ userId: 'u', createdAt: now }))
    expect(await store.listByUser('u')).toEqual(ids)
  })

  it('clear() empties the sessions and the index but keeps files moved aside as corrupt', async () => {
    const store = make()
    const id = randomUUID()
    await store.save(id, newChange({ userId: 'u' }))
    await store.save(randomUUID(), newChange({ userId: 'v' }))
    const broken = randomUUID()
    await store.save(broken, newChange())
    writeFileSync(sessionFile(store, broken), '{')
    await store.clear()
    expect(readdirSync(join(store.dir, 'sessions'))).toEqual([])
    expect(readdirSync(join(store.dir, 'users'))).toEqual([])
    expect(readdirSync(join(store.dir, 'corrupt'))).toHaveLength(1)
    expect(await store.count()).toBe(0)
  })
})

// ---- failures, with real mounts ----

function sh(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0
}

/** Mounting needs root (or CAP_SYS_ADMIN); a container without it skips these cases. */
const canMount = (() => {
  const probe = mkdtempSync(join(tmpdir(), 'concord-mount-probe-'))
  const ok = sh('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe])
  if (ok) sh('umount', [probe])
  rmSync(probe, { recursive: true, force: true })
  if (!ok)
    console.warn(
      'FileStore failure tests skipped: cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)',
    )
  return ok
})()
const itMount = canMount ? it : it.skip

describe('FileStore failures', () => {
  const mounts: string[] = []
  function tmpfs(size: string): string {
    const dir = mkdtempSync(join(tmpdir(), 'concord-tmpfs-'))
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir])
    mounts.push(dir)
    return dir
  }
  afterAll(() => {
    for (const dir of mounts.reverse()) {
      sh('umount', ['-l', dir])
      rmSync(dir, { recursive: true, force: true })
    }
  })

  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown) => unhandled.push(reason)
  beforeAll(() => process.on('unhandledRejection', onUnhandled))
  afterAll(() => {
    process.off('unhandledRejection', onUnhandled)
  })

  async function failure(promise: Promise<unknown>): Promise<StoreError> {
    const err = await promise.then(
      () => {
        throw new Error('expected a StoreError')
      },
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(StoreError)
    return err as StoreError
  }

  itMount(
    'ENOSPC: a 503 naming the directory; the old version survives; no temp or lock is left; it recovers',
    async () => {
      const mount = tmpfs('64k')
      const store = new FileStore({ dir: join(mount, 'sessions') })
      stores.push(store)
      const ids = [randomUUID(), randomUUID(), randomUUID()]
      for (const id of ids)
        await store.save(id, newChange({ set: { id: JSON.stringify(id) }, userId: 'u' }))

      // A value bigger than the whole file system, as a create and as an update.
      const big = JSON.stringify('x'.repeat(200_000))
      let err = await failure(store.save(randomUUID(), newChange({ set: { big } })))
      expect(err).toMatchObject({ status: 503, code: 'EFULL' })
      expect(err.message).toContain(store.dir)
      expect(err.message).toContain('no space left')
      expect((err.cause as NodeJS.ErrnoException).code).toBe('ENOSPC')
      err = await failure(store.save(ids[0]!, newChange({ set: { big }, expectedVersion: 1 })))
      expect(err.status).toBe(503)
      expect(readdirSync(join(store.dir, 'tmp'))).toEqual([])
      expect(readdirSync(join(store.dir, 'locks'))).toEqual([])

      // Fill the disk to the last byte: even a lock file's few bytes cannot be written now.
      const filler = join(mount, 'filler')
      try {
        writeFileSync(filler, Buffer.alloc(64 * 1024))
      } catch (e) {
        expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC') // partly written: full
      }
      err = await failure(
        store.save(ids[1]!, newChange({ set: { more: '1' }, expectedVersion: 1 })),
      )
      expect(err).toMatchObject({ status: 503, code: 'EFULL' })
      expect(err.message).toContain(store.dir)
      expect(readdirSync(join(store.dir, 'locks'))).toEqual([])

      // Reads go on; nothing was lost.
      for (const id of ids)
        expect(await store.load(id, { touchAt: Date.now() })).toMatchObject({
          data: { id: JSON.stringify(id) },
          version: 1,
        })
      expect(await store.listByUser('u')).toHaveLength(3)

      rmSync(filler)
      expect(
        await store.save(
          ids[1]!,
          newChange({ set: { more: '1' }, expectedVersion: 1, userId: 'u' }),
        ),
      ).toEqual({ ok: true, version: 2 })
      expect(unhandled).toEqual([])
    },
  )

  itMount(
    'read-only (a tmpfs remounted ro): a 503 naming the directory; every session survives; it recovers on rw',
    async () => {
      const mount = tmpfs('1m')
      const store = new FileStore({ dir: join(mount, 'sessions'), reapInterval: 20 })
      stores.push(store)
      const ids = [randomUUID(), randomUUID()]
      for (const id of ids)
        await store.save(id, newChange({ set: { id: JSON.stringify(id) }, userId: 'u' }))
      await store.save(randomUUID(), newChange({ expiresAt: Date.now() - 1 })) // for the reaper to fail on
      execFileSync('mount', ['-o', 'remount,ro', mount])
      try {
        for (const attempt of [
          store.save(randomUUID(), newChange()),
          store.save(ids[0]!, newChange({ set: { x: '1' }, expectedVersion: 1 })),
          store.destroy(ids[1]!),
          store.destroyByUser('u'),
          store.load(ids[0]!, { touchAt: Date.now() }), // the touch cannot be written: fail closed
        ]) {
          const err = await failure(attempt)
          expect(err.status).toBe(503)
          expect(err.message).toContain(store.dir)
          expect(err.message).toMatch(/read-only/)
        }
        // Reading without a touch still works, and the reaper's failures stay inside the process.
        expect((await store.load(ids[0]!))?.data).toEqual({ id: JSON.stringify(ids[0]) })
        await sleep(100)
        expect(await store.count()).toBe(2)
      } finally {
        execFileSync('mount', ['-o', 'remount,rw', mount])
      }
      for (const id of ids)
        expect(await store.load(id)).toMatchObject({ data: { id: JSON.stringify(id) }, version: 1 })
      expect(await store.save(ids[0]!, newChange({ set: { x: '1' }, expectedVersion: 1 }))).toEqual(
        { ok: true, version: 2 },
      )
      expect(unhandled).toEqual([])
    },
  )

  itMount(
    'a directory that is missing and cannot be made: a 503 naming it, with the real cause',
    async () => {
      const mount = tmpfs('64k')
      execFileSync('mount', ['-o', 'remount,ro', mount])
      const store = new FileStore({ dir: join(mount, 'not', 'there') })
      stores.push(store)
      const err = await failure(store.save(randomUUID(), newChange()))
      expect(err.status).toBe(503)
      expect(err.message).toContain(join(mount, 'not', 'there'))
      expect((err.cause as NodeJS.ErrnoException).code).toBe('EROFS')
      expect(await store.load(randomUUID())).toBeNull()
      expect(await store.count()).toBe(0)
    },
  )

  it('a path through a regular file: a 503 naming the directory (no mount needed)', async () => {
    const file = join(root, `file-${randomUUID()}`)
    writeFileSync(file, '')
    const store = new FileStore({ dir: join(file, 'sessions') })
    stores.push(store)
    const err = await failure(store.save(randomUUID(), newChange()))
    expect(err.status).toBe(503)
    expect(err.message).toContain(join(file, 'sessions'))
    expect(err.message).toMatch(/not a directory/)
  })

  it('a lock held past lockTimeout is a 503 with code ETIMEDOUT, not a hang', async () => {
    const store = make({ lockTimeout: 100 })
    const id = randomUUID()
    await store.save(id, newChange())
    // A lock from another PID namespace: its holder cannot be checked from here, and its lease is fresh.
    symlinkSync(
      `c1.1.ffffffffffff.0123456789ab.${Date.now().toString(36)}.1`,
      join(store.dir, 'locks', sha256(id)),
    )
    const err = await failure(store.save(id, newChange({ expectedVersion: 1 })))
    expect(err).toMatchObject({ status: 503, code: 'ETIMEDOUT' })
    expect(err.message).toContain(store.dir)
    expect((await store.load(id))?.version).toBe(1)
  })
})

describe('FileStore lock protocol (a symlink whose target names the holder)', () => {
  /** The lock text a process with this pid on this host and PID namespace would write. */
  function localLock(pid: number, at = Date.now()): string {
    let ns = ''
    try {
      ns = readlinkSync('/proc/self/ns/pid')
    } catch {
      // not Linux
    }
    const place = createHash('sha256').update(`${hostname()}\0${ns}`).digest('hex').slice(0, 12)
    return `c1.${pid}.${place}.0123456789ab.${at.toString(36)}.1`
  }

  function deadPid(): number {
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    })
    return Number(child.stdout)
  }

  it('takes the lock as a symlink of under 60 bytes (ext4 keeps it in the inode) and removes it after the save', async () => {
    const store = make()
    const id = randomUUID()
    await store.save(id, newChange())
    const lock = join(store.dir, 'locks', sha256(id))
    // The gate: the save stops inside its lock, opening the user index entry (a FIFO here).
    const gate = fifoGate(join(store.dir, 'users', sha256('u'), sha256(id)))
    const saving = store.save(id, newChange({ expectedVersion: 1, userId: 'u' }))
    await gate.reached(lock)
    const seen = readlinkSync(lock)
    await gate.open()
    expect(await saving).toEqual({ ok: true, version: 2 })
    expect(seen).toMatch(
      new RegExp(`^c1\\.${process.pid}\\.[0-9a-f]{12}\\.[0-9a-f]{12}\\.[0-9a-z]+\\.[0-9a-z]+$`),
    )
    expect(Buffer.byteLength(seen)).toBeLessThan(60)
    expect(readdirSync(join(store.dir, 'locks'))).toEqual([])
  })

  it('breaks a symlink lock whose holder on this host has died, at once', async () => {
    // Had it waited at all, a 1 ms lockTimeout would fail the save; a 60 s lease cannot run out here.
    const store = make({ lockTimeout: 1, staleLockTimeout: 60_000 })
    const id = randomUUID()
    await store.save(id, newChange())
    symlinkSync(localLock(deadPid()), join(store.dir, 'locks', sha256(id)))
    expect(await store.save(id, newChange({ expectedVersion: 1 }))).toEqual({
      ok: true,
      version: 2,
    })
    expect(readdirSync(join(store.dir, 'locks'))).toEqual([])
  })

  it('waits on a symlink lock whose holder on this host is alive, and breaks it once not renewed for staleLockTimeout', async () => {
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], {
      stdio: 'ignore',
    })
    try {
      const store = make({ lockTimeout: 150, staleLockTimeout: 1000 })
      const id = randomUUID()
      await store.save(id, newChange())
      const lock = join(store.dir, 'locks', sha256(id))
      symlinkSync(localLock(live.pid!), lock)
      expect(
        await store.save(id, newChange({ expectedVersion: 1 })).catch((e: unknown) => e),
      ).toMatchObject({ status: 503, code: 'ETIMEDOUT' })
      expect(readlinkSync(lock).startsWith(`c1.${live.pid}.`)).toBe(true) // still there, not broken
      // The same holder, its lock last renewed longer ago than staleLockTimeout: a hung process.
      lutimesSync(lock, new Date(Date.now() - 1500), new Date(Date.now() - 1500))
      expect(await store.save(id, newChange({ expectedVersion: 1 }))).toEqual({
        ok: true,
        version: 2,
      })
      expect(readdirSync(join(store.dir, 'locks'))).toEqual([])
    } finally {
      live.kill('SIGKILL')
    }
  })

  it("reap() breaks a dead holder's symlink lock, a lock not renewed for staleLockTimeout, and a crashed breaker's aside symlink", async () => {
    const writer = make() // the default lease: a 100 ms one could lapse mid-write under load
    const store = make({ dir: writer.dir, staleLockTimeout: 100 })
    await writer.save(randomUUID(), newChange())
    const locks = join(store.dir, 'locks')
    symlinkSync(localLock(deadPid()), join(locks, sha256(randomUUID())))
    // A holder this host cannot check (another PID namespace), its lease run out.
    const foreign = join(locks, sha256(randomUUID()))
    symlinkSync(`c1.1.ffffffffffff.0123456789ab.${Date.now().toString(36)}.1`, foreign)
    // Renamed aside by a breaker that died before deleting it: it points nowhere, so only lstat sees its age.
    const aside = join(locks, `${sha256(randomUUID())}.abc1.stale`)
    symlinkSync(localLock(deadPid()), aside)
    const past = new Date(Date.now() - 1000)
    lutimesSync(foreign, past, past)
    // An aside's age is its ctime (when it was renamed), which only waiting moves.
    await waitUntil(() => Date.now() - lstatSync(aside).ctimeMs > 100)
    await store.reap()
    expect(readdirSync(locks)).toEqual([])
  })

  it('puts back a lock taken between judging one stale and breaking it', async () => {
    // Two waiters judge the same dead holder's lock stale; the first breaks it and takes the lock,
    // the second must not delete the new one. Many rounds in one process exercise that path.
    // A long lease: the dead holder is judged by its pid, and a loaded machine must not let the
    // live holders' own leases lapse mid-save.
    const store = make({ staleLockTimeout: 60_000 })
    const other = new FileStore({ dir: store.dir, staleLockTimeout: 60_000 })
    stores.push(other)
    const id = randomUUID()
    await store.save(id, newChange())
    for (let round = 0; round < 20; round++) {
      symlinkSync(localLock(deadPid()), join(store.dir, 'locks', sha256(id)))
      const [a, b] = await Promise.all([store.load(id), other.load(id)])
      const results = await Promise.all([
        store.save(id, newChange({ expectedVersion: a!.version, set: { a: String(round) } })),
        other.save(id, newChange({ expectedVersion: b!.version, set: { b: String(round) } })),
      ])
      // Exactly one wins each round: both holding the lock at once would let both succeed.
      expect(results.filter((r) => r.ok)).toHaveLength(1)
      expect(readdirSync(join(store.dir, 'locks'))).toEqual([])
    }
  })
})

describe('FileStore saves after a load in this process', () => {
  it('sees a save, a destroy, an expiry or an in-place change made by another store between the load and the save', async () => {
    const a = make()
    const b = new FileStore({ dir: a.dir })
    stores.push(b)
    const id = randomUUID()
    await a.save(id, newChange({ set: { n: '0' } }))

    // Another writer saved in between: a different inode, so the file is read again and it is a conflict.
    const loaded = (await a.load(id))!
    await b.save(id, newChange({ expectedVersion: (await b.load(id))!.version, set: { n: 'b' } }))
    const conflict = await a.save(
      id,
      newChange({ expectedVersion: loaded.version, set: { n: 'a' } }),
    )
    expect(conflict).toMatchObject({
      ok: false,
      reason: 'conflict',
      current: { version: 2, data: { n: 'b' } },
    })

    // Unchanged in between but touched: the save goes through, on the version it loaded.
    const again = (await a.load(id))!
    await b.touch(id, Date.now() + 7_200_000)
    expect(
      await a.save(id, newChange({ expectedVersion: again.version, set: { n: 'a' } })),
    ).toEqual({ ok: true, version: 3 })
    expect((await b.load(id))!.data).toEqual({ n: 'a' })

    // Expired in between (the mtime is the expiry): gone, and not brought back.
    await a.load(id)
    utimesSync(sessionFile(a, id), new Date(), new Date(Date.now() - 1000))
    expect(await a.save(id, newChange({ expectedVersion: 3 }))).toEqual({
      ok: false,
      reason: 'gone',
    })
    expect(await b.load(id)).toBeNull()

    // Destroyed in between: gone.
    const id2 = randomUUID()
    await a.save(id2, newChange())
    await a.load(id2)
    await b.destroy(id2)
    expect(await a.save(id2, newChange({ expectedVersion: 1 }))).toEqual({
      ok: false,
      reason: 'gone',
    })

    // Written in place (not by a store: a disk or an operator) to another size: read again, found corrupt, moved aside.
    const id3 = randomUUID()
    await a.save(id3, newChange())
    await a.load(id3)
    writeFileSync(sessionFile(a, id3), 'not json')
    expect(await a.save(id3, newChange({ expectedVersion: 1 }))).toEqual({
      ok: false,
      reason: 'gone',
    })
    expect(readdirSync(join(a.dir, 'corrupt'))).toHaveLength(1)
  })
})
