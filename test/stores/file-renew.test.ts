/**
 * FileStore id renewal beyond the shared conformance cases, on real directories: the files a
 * renewal leaves, the grace capped at the session's expiry, what count() and reap() make of
 * forwards, an unreadable forward, and bad arguments.
 */
import { createHash, randomUUID } from 'node:crypto'
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileStore } from '../../entries/file'
import type { StoreNotice } from '../../lib/store-notices'
import { newChange } from '../store-conformance'

const root = mkdtempSync(join(tmpdir(), 'concord-file-renew-'))
const stores: FileStore[] = []
let n = 0
function make(): FileStore {
  const store = new FileStore({ dir: join(root, `store-${n++}`) })
  stores.push(store)
  return store
}
afterAll(async () => {
  for (const store of stores) await store.close()
  rmSync(root, { recursive: true, force: true })
})

const HOUR = 3_600_000
const LONG_GRACE = 10 * 60_000
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')
const fileOf = (store: FileStore, id: string) => join(store.dir, 'sessions', `${sha256(id)}.json`)

async function created(store: FileStore, userId: string | null = null): Promise<string> {
  const id = randomUUID()
  const result = await store.save(id, newChange({ set: { cart: '["tea"]' }, userId }))
  expect(result).toEqual({ ok: true, version: 1 })
  return id
}

describe('FileStore renewal on disk', () => {
  it('leaves a read-only forward at the old name, the session at the new one, and moves the index entry', async () => {
    const store = make()
    const oldId = await created(store, 'ada')
    const expiresAt = (await store.load(oldId))!.expiresAt
    const newId = randomUUID()
    const now = Date.now()
    expect(await store.renew(oldId, newId, { now, graceMs: LONG_GRACE })).toEqual({ ok: true })

    const forward = statSync(fileOf(store, oldId))
    expect(JSON.parse(readFileSync(fileOf(store, oldId), 'utf8'))).toEqual({
      format: 1,
      id: oldId,
      renewedTo: newId,
    })
    expect(forward.mode & 0o777).toBe(0o400)
    expect(Math.round(forward.mtimeMs)).toBe(now + LONG_GRACE)
    const moved = JSON.parse(readFileSync(fileOf(store, newId), 'utf8')) as Record<string, unknown>
    expect(moved).toMatchObject({ id: newId, version: 1, userId: 'ada', renewedAt: now })
    expect(Math.round(statSync(fileOf(store, newId)).mtimeMs)).toBe(expiresAt)
    expect(readdirSync(join(store.dir, 'users', sha256('ada')))).toEqual([sha256(newId)])
    expect(await store.count()).toBe(1)
    expect(await store.listByUser('ada')).toEqual([newId])
  })

  it('keeps renewedAt across later saves of the renewed session', async () => {
    const store = make()
    const oldId = await created(store)
    const newId = randomUUID()
    const now = Date.now()
    await store.renew(oldId, newId, { now, graceMs: LONG_GRACE })
    const saved = await store.save(newId, newChange({ set: { n: '1' }, expectedVersion: 1 }))
    expect(saved).toEqual({ ok: true, version: 2 })
    expect(await store.load(newId)).toMatchObject({ renewedAt: now, version: 2 })
  })

  it('ends the grace at the session expiry when that comes first', async () => {
    const store = make()
    const oldId = randomUUID()
    const expiresAt = Date.now() + HOUR
    await store.save(oldId, newChange({ expiresAt }))
    await store.renew(oldId, randomUUID(), { now: Date.now(), graceMs: 10 * HOUR })
    expect(Math.round(statSync(fileOf(store, oldId)).mtimeMs)).toBe(expiresAt)
  })

  it('reap() removes a forward past its grace, reports no expired session, and leaves one within it', async () => {
    const store = make()
    const notices: StoreNotice[] = []
    store.onLifecycle((notice) => notices.push(notice))
    const [ended, within] = [await created(store), await created(store)]
    const [endedTo, withinTo] = [randomUUID(), randomUUID()]
    await store.renew(ended, endedTo, { now: Date.now(), graceMs: 0 })
    await store.renew(within, withinTo, { now: Date.now(), graceMs: LONG_GRACE })

    expect(await store.reap()).toBe(0) // no session expired: forwards are not sessions
    expect(existsSync(fileOf(store, ended))).toBe(false)
    expect(existsSync(fileOf(store, within))).toBe(true)
    expect(notices).toEqual([])
    expect(await store.load(ended)).toBeNull()
    expect(await store.load(within)).toMatchObject({ renewedTo: withinTo })
    expect(await store.count()).toBe(2)
  })

  it('a load of an old id past its grace removes its forward; a save of it is gone', async () => {
    const store = make()
    const oldId = await created(store)
    const newId = randomUUID()
    await store.renew(oldId, newId, { now: Date.now(), graceMs: 0 })
    expect(await store.load(oldId, { touchAt: Date.now() })).toBeNull()
    expect(existsSync(fileOf(store, oldId))).toBe(false)
    expect(await store.save(oldId, newChange({ expectedVersion: 1 }))).toEqual({
      ok: false,
      reason: 'gone',
    })
    expect(await store.load(newId)).toMatchObject({ version: 1, data: { cart: '["tea"]' } })
  })

  it('moves a forward it cannot read aside, like any unreadable session file', async () => {
    const store = make()
    const oldId = await created(store)
    const file = fileOf(store, oldId)
    await store.renew(oldId, randomUUID(), { now: Date.now(), graceMs: LONG_GRACE })
    rmSync(file)
    writeFileSync(file, JSON.stringify({ format: 1, id: oldId, renewedTo: '../etc' }), {
      mode: 0o400,
    })
    expect(await store.load(oldId)).toBeNull()
    expect(existsSync(file)).toBe(false)
    expect(readdirSync(join(store.dir, 'corrupt'))).toHaveLength(1)
  })

  it("answers 'taken' for a new id whose file cannot be read, and writes nothing over it", async () => {
    const store = make()
    const oldId = await created(store)
    const newId = randomUUID()
    writeFileSync(fileOf(store, newId), 'not json', { mode: 0o600 })
    expect(await store.renew(oldId, newId, { now: Date.now(), graceMs: LONG_GRACE })).toEqual({
      ok: false,
      reason: 'taken',
    })
    expect(readFileSync(fileOf(store, newId), 'utf8')).toBe('not json')
    expect((await store.load(oldId))?.renewedTo).toBeUndefined()
  })

  it('rejects bad ids and options with a TypeError, changing nothing', async () => {
    const store = make()
    const oldId = await created(store)
    await expect(
      store.renew(oldId, '../x', { now: Date.now(), graceMs: LONG_GRACE }),
    ).rejects.toThrow(/FileStore: renew needs valid session ids, got "..\/x"/)
    await expect(
      store.renew(oldId, randomUUID(), { now: Date.now(), graceMs: Number.NaN }),
    ).rejects.toThrow(/FileStore: .*graceMs as ms >= 0/)
    await expect(store.renew(oldId, randomUUID(), undefined as never)).rejects.toThrow(
      /needs now in epoch ms/,
    )
    expect(await store.load(oldId)).toMatchObject({ version: 1, data: { cart: '["tea"]' } })
    expect(readdirSync(join(store.dir, 'sessions'))).toEqual([`${sha256(oldId)}.json`])
  })

  it("answers 'taken' when asked to renew a session as its own id", async () => {
    const store = make()
    const id = await created(store)
    expect(await store.renew(id, id, { now: Date.now(), graceMs: LONG_GRACE })).toEqual({
      ok: false,
      reason: 'taken',
    })
    expect(await store.load(id)).toMatchObject({ version: 1 })
  })
})
