/**
 * LayeredStore: the Store contract and the middleware's guarantees with Redis (or a one-process
 * MemoryStore) over PostgreSQL; two layered stores sharing both layers as two processes would,
 * with refills held up on purpose; and a hot layer that hangs or goes away.
 */
import { randomUUID } from 'node:crypto'
import Redis from 'ioredis'
import type { LoadOptions, SessionChange, SessionRecord, Store } from '../../lib/store'
import { LayeredStore, type LayeredStoreOptions } from '../../entries/layered'
import { MemoryStore } from '../../stores/memory/store'
import { PostgresStore } from '../../entries/postgres'
import { RedisStore } from '../../entries/redis'
import { describeMiddlewareOverStore } from '../middleware-store-suite'
import { describeStore, newChange } from '../store-conformance'
import {
  dropSchema,
  makePool,
  startProxy,
  testSchema,
  type CuttableProxy,
} from '../support/postgres'
import { redisUrl, testPrefix } from '../support/redis-server'

const schema = testSchema('layered')
const pool = makePool()
const clients: Redis[] = []
const proxies: CuttableProxy[] = []
let tables = 0

function redis(url = redisUrl()): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  clients.push(client)
  return client
}
afterAll(async () => {
  for (const client of clients) client.disconnect()
  for (const proxy of proxies) await proxy.close()
  await dropSchema(schema)
  await pool.end()
})

const cold = (table = `sessions_${tables++}`) => new PostgresStore({ pool, schema, table })
const hot = (client = redis(), prefix = testPrefix('hot')) =>
  new RedisStore({ client, prefix, timeout: 500 })

/** Each layered store's cold layer, so the suite can run its prune. */
const colds = new WeakMap<Store, PostgresStore>()
function layered(options: Omit<LayeredStoreOptions, 'cold'>): LayeredStore {
  const store = cold()
  const made = new LayeredStore({ ...options, cold: store })
  colds.set(made, store)
  return made
}
const lifecycle = {
  atLoad: 'absolute',
  prune: (store: Store) => colds.get(store)!.prune(),
} as const

// PostgresStore renews ids, so a LayeredStore over it does (the renewal cases run here too).
describeStore('LayeredStore (Redis over PostgreSQL)', async () => layered({ hot: hot() }), {
  lifecycle,
})
describeStore(
  'LayeredStore (one-process memory over PostgreSQL)',
  async () => layered({ hot: new MemoryStore(), singleProcess: true }),
  { lifecycle },
)
describeStore(
  'LayeredStore (Redis over a renewing MemoryStore)',
  async () => new LayeredStore({ hot: hot(), cold: new MemoryStore() }),
  { lifecycle: { atLoad: 'absolute' } },
)
describeMiddlewareOverStore(
  'LayeredStore (Redis over PostgreSQL)',
  // A cold bound far above what a loaded machine needs: the suite is about merging.
  async () =>
    new LayeredStore({
      hot: hot(),
      cold: new PostgresStore({ pool, schema, table: `sessions_${tables++}`, timeout: 60_000 }),
    }),
)
describeMiddlewareOverStore(
  'LayeredStore (Redis over PostgreSQL)',
  async () => new LayeredStore({ hot: hot(), cold: cold() }),
  { maxSessionsPerUser: 3, touchAfter: 60_000 },
)
describeMiddlewareOverStore(
  'LayeredStore (Redis over PostgreSQL)',
  async () => new LayeredStore({ hot: hot(), cold: cold() }),
  { observed: true },
)
// Renewal happens in the PostgreSQL cold store; requests straddle it through both layers.
describeMiddlewareOverStore(
  'LayeredStore (Redis over PostgreSQL)',
  async () =>
    new LayeredStore({
      hot: hot(),
      cold: new PostgresStore({ pool, schema, table: `sessions_${tables++}`, timeout: 60_000 }),
    }),
  { renew: { afterRequests: 15 } },
)

/** Holds each load's answer until `release()`: a refill that read cold, then stalled. */
class HeldLoads implements Store {
  #held: Array<() => void> = []
  hold = false
  constructor(readonly inner: Store) {}
  async load(id: string, options?: LoadOptions): Promise<SessionRecord | null> {
    const record = await this.inner.load(id, options)
    if (this.hold) await new Promise<void>((resolve) => this.#held.push(resolve))
    return record
  }
  get waiting(): number {
    return this.#held.length
  }
  release(): void {
    for (const fn of this.#held.splice(0)) fn()
  }
  save(id: string, change: SessionChange) {
    return this.inner.save(id, change)
  }
  touch(id: string, expiresAt: number) {
    return this.inner.touch(id, expiresAt)
  }
  destroy(id: string) {
    return this.inner.destroy(id)
  }
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setImmediate(resolve))
}

describe('LayeredStore shared by two processes', () => {
  /** Two layered stores on one Redis prefix and one table, each with its own connections; b's cold loads can be held. */
  function pair() {
    const table = `sessions_${tables++}`
    const prefix = testPrefix('shared')
    const client = redis()
    const heldCold = new HeldLoads(new PostgresStore({ pool: makePool({ max: 4 }), schema, table }))
    return {
      a: new LayeredStore({
        hot: hot(client, prefix),
        cold: new PostgresStore({ pool, schema, table }),
      }),
      b: new LayeredStore({ hot: hot(redis(), prefix), cold: heldCold }),
      heldCold,
      /** Drops the session's hot entry, as its hotTtl running out would. */
      evict: (id: string) => client.del(prefix + id),
      hotEntry: (id: string) => client.hgetall(prefix + id),
    }
  }

  /** Starts b.load(id), which misses hot, reads cold and is held before it refills hot. */
  async function heldRefill(
    p: ReturnType<typeof pair>,
    id: string,
  ): Promise<{ loading: Promise<SessionRecord | null> }> {
    await p.evict(id)
    p.heldCold.hold = true
    const loading = p.b.load(id)
    await until(() => p.heldCold.waiting === 1)
    p.heldCold.hold = false
    return { loading } // wrapped: an async function would otherwise wait for it
  }

  it('a refill that read cold before a save cannot put the older version back in hot', async () => {
    const p = pair()
    const id = randomUUID()
    await p.a.save(id, newChange({ set: { n: '1' } }))
    const { loading: stale } = await heldRefill(p, id)
    const loaded = await p.a.load(id)
    expect(
      await p.a.save(id, newChange({ set: { n: '2' }, expectedVersion: loaded!.version })),
    ).toEqual({ ok: true, version: 2 })
    p.heldCold.release()
    expect((await stale)?.version).toBe(1) // that read began before the save was answered
    expect(await p.b.load(id)).toMatchObject({ version: 2, data: { n: '2' } })
    expect(await p.a.load(id)).toMatchObject({ version: 2, data: { n: '2' } })
  })

  it('a refill that read cold before a destroy cannot bring the session back in either layer', async () => {
    const p = pair()
    const id = randomUUID()
    await p.a.save(id, newChange({ set: { n: '1' } }))
    const { loading: stale } = await heldRefill(p, id)
    await p.a.destroy(id)
    p.heldCold.release()
    await stale
    expect(await p.b.load(id)).toBeNull()
    expect(await p.a.load(id)).toBeNull()
    expect(await p.heldCold.inner.load(id)).toBeNull()
    expect(await p.b.save(id, newChange({ set: { n: '2' }, expectedVersion: 1 }))).toEqual({
      ok: false,
      reason: 'gone',
    })
    expect(await p.a.load(id)).toBeNull()
  })

  it('serves the other process every version it was told was saved, save after save', async () => {
    const p = pair()
    const id = randomUUID()
    await p.a.save(id, newChange({ set: { n: '0' } }))
    for (let i = 1; i <= 30; i++) {
      const [writer, reader] = i % 2 ? [p.a, p.b] : [p.b, p.a]
      const record = await writer.load(id, { touchAt: Date.now() })
      const saved = await writer.save(
        id,
        newChange({ set: { n: String(i) }, expectedVersion: record!.version }),
      )
      expect(saved).toEqual({ ok: true, version: i + 1 })
      expect(await reader.load(id, { touchAt: Date.now() })).toMatchObject({
        version: i + 1,
        data: { n: String(i) },
      })
    }
  })

  it('keeps a session read only from hot alive in cold, by touching cold once hot runs ahead', async () => {
    const p = pair()
    const id = randomUUID()
    const now = Date.now()
    await p.a.save(id, newChange({ createdAt: now, expiresAt: now + 5000, idleTimeout: 3_600_000 }))
    expect((await p.a.load(id, { touchAt: now + 1000 }))?.expiresAt).toBe(now + 1000 + 3_600_000)
    // The cold touch is not awaited by the read: wait for it to land.
    for (
      let record = await p.heldCold.inner.load(id);
      record!.expiresAt !== now + 1000 + 3_600_000;
      record = await p.heldCold.inner.load(id)
    ) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  })
})

describe('LayeredStore options', () => {
  it('refuses a per-process MemoryStore hot layer unless the app says it is one process', () => {
    expect(() => new LayeredStore({ hot: new MemoryStore(), cold: cold() })).toThrow(
      /singleProcess: true/,
    )
    expect(
      () => new LayeredStore({ hot: new MemoryStore(), cold: cold(), singleProcess: true }),
    ).not.toThrow()
  })

  it.each([
    [{ hot: undefined, cold: new MemoryStore() }, /hot must be a concord-session Store/],
    [{ hot: new MemoryStore(), cold: {} }, /cold must be a concord-session Store/],
    [
      { hot: new MemoryStore(), cold: new MemoryStore(), singleProcess: true, hotTtl: 10 },
      /hotTtl must be a number of ms, at least 1000/,
    ],
    [
      { hot: new MemoryStore(), cold: new MemoryStore(), singleProcess: true, hotRetryAfter: 0 },
      /hotRetryAfter must be a positive number/,
    ],
  ])('rejects %p', (options, message) => {
    expect(() => new LayeredStore(options as never)).toThrow(message)
  })

  it('refuses the same store as both layers, and a session key that is reserved', async () => {
    const store = new MemoryStore()
    expect(() => new LayeredStore({ hot: store, cold: store, singleProcess: true })).toThrow(
      /two different stores/,
    )
    const layered = new LayeredStore({
      hot: new MemoryStore(),
      cold: new MemoryStore(),
      singleProcess: true,
    })
    await expect(
      layered.save(randomUUID(), newChange({ set: { '\u0000concord-layer': '1' } })),
    ).rejects.toThrow(/is reserved/)
  })
})

describe('LayeredStore with its hot layer failing', () => {
  async function throughProxy(hotRetryAfter = 200) {
    const proxy = await startProxy(Number(new URL(redisUrl()).port))
    proxies.push(proxy)
    const client = redis(`redis://127.0.0.1:${proxy.port}`)
    const prefix = testPrefix('flaky')
    const direct = redis()
    const store = new LayeredStore({ hot: hot(client, prefix), cold: cold(), hotRetryAfter })
    return {
      proxy,
      store,
      hotEntry: (id: string) => direct.hgetall(prefix + id),
      /** Resolves once the store's own Redis connection answers again. */
      async hotAnswers(): Promise<void> {
        for (;;) {
          if (
            await client.ping().then(
              () => true,
              () => false,
            )
          )
            return
          await new Promise((resolve) => setTimeout(resolve, 20))
        }
      },
    }
  }

  it('answers every call from cold while hot is unreachable, and uses hot again once it is back', async () => {
    const { proxy, store, hotEntry } = await throughProxy()
    const id = randomUUID()
    await store.save(id, newChange({ set: { n: '1' } }))
    expect(await hotEntry(id)).toMatchObject({ n: '1' })
    proxy.cut()
    for (let i = 2; i <= 4; i++) {
      const record = await store.load(id, { touchAt: Date.now() })
      expect(
        await store.save(
          id,
          newChange({ set: { n: String(i) }, expectedVersion: record!.version }),
        ),
      ).toEqual({ ok: true, version: i })
    }
    const gone = randomUUID()
    await store.save(gone, newChange())
    await store.destroy(gone)
    proxy.restore()
    // Hot is tried again after hotRetryAfter; until then calls keep going to cold.
    for (;;) {
      const record = await store.load(id, { touchAt: Date.now() })
      expect(record).toMatchObject({ version: 4, data: { n: '4' } })
      if ((await hotEntry(id)).n === '4') break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect(await store.load(gone)).toBeNull()
  })

  it('treats a hot store that throws as it is called like a failed one: the read comes from cold', async () => {
    /** A hot store with a bug: its calls throw instead of returning a rejected promise. */
    class ThrowingCalls extends MemoryStore {
      broken: 'load' | 'save' | undefined
      loads = 0
      override load(id: string, options?: LoadOptions): Promise<SessionRecord | null> {
        this.loads++
        if (this.broken === 'load') throw new Error('hot store bug')
        return super.load(id, options)
      }
      override save(id: string, change: SessionChange) {
        if (this.broken === 'save') throw new Error('hot store bug')
        return super.save(id, change)
      }
    }
    for (const broken of ['load', 'save'] as const) {
      const hotStore = new ThrowingCalls()
      const store = new LayeredStore({
        hot: hotStore,
        cold: new MemoryStore(),
        singleProcess: true,
        hotRetryAfter: 60_000,
      })
      const id = randomUUID()
      const now = Date.now()
      const times = { createdAt: now, expiresAt: now + 2000, idleTimeout: 2000 }
      await store.save(id, newChange({ set: { n: '1' }, ...times }))
      hotStore.broken = broken
      // Far enough ahead that the read also writes hot (cold is told of the idle expiry).
      const touchAt = now + 10_000
      await expect(store.load(id, { touchAt })).resolves.toMatchObject({
        version: 1,
        data: { n: '1' },
        expiresAt: touchAt + 2000,
      })
      // Hot is skipped for hotRetryAfter: the next read does not call it.
      const loads = hotStore.loads
      await expect(store.load(id, { touchAt })).resolves.toMatchObject({ version: 1 })
      expect(hotStore.loads).toBe(loads)
    }
  })

  it('a hot layer that hung through saves does not serve the version from before them when it resumes', async () => {
    const { proxy, store, hotEntry, hotAnswers } = await throughProxy(1)
    const id = randomUUID()
    await store.save(id, newChange({ set: { n: '1' } }))
    proxy.hang()
    expect(await store.load(id)).toMatchObject({ version: 1 })
    expect(await store.save(id, newChange({ set: { n: '2' }, expectedVersion: 1 }))).toEqual({
      ok: true,
      version: 2,
    })
    proxy.restore()
    await hotAnswers()
    expect(await hotEntry(id)).toMatchObject({ n: '1' }) // hot still holds the version from before
    await new Promise((resolve) => setTimeout(resolve, 5)) // past hotRetryAfter (1 ms): hot is tried again
    expect(await store.load(id, { touchAt: Date.now() })).toMatchObject({
      version: 2,
      data: { n: '2' },
    })
    expect(await hotEntry(id)).toMatchObject({ n: '2' }) // and it was refilled from cold
  })
})
