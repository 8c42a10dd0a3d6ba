/**
 * Heap cost of idle sessions in the in-process stores. Each store is measured in a fresh child
 * with --expose-gc: heapUsed after a full GC, before and after filling the store. Sessions go in
 * through each store's own API with the data the cart app stores (a user and a 5-item cart), in
 * the shape its middleware hands it; ids are made inside the measured window and not kept, so
 * the store's copy of each id is counted.
 */
import { fork } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { isValidSessionId, MemoryStore } from '../entries/index.js'
import { killOnExit, onCleanup } from './cleanup.js'
import { expressSession, memorystore, type LegacyStore } from './peers.js'
import { MAX_AGE_MS } from './systems.js'

export const MEMORY_STORES = ['concord-memory', 'es-memory', 'es-memorystore'] as const
export type MemoryStoreId = (typeof MEMORY_STORES)[number]

export interface MemoryResult {
  store: MemoryStoreId
  sessions: number
  heapDeltaBytes: number
}

/** Measures one store in a child process, run from the compiled tree `buildDir` (bench/build.ts). */
export function measureMemory(
  store: MemoryStoreId,
  sessions: number,
  buildDir: string,
): Promise<MemoryResult> {
  const child = fork(join(buildDir, 'bench', 'memory.js'), [store, String(sessions)], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  killOnExit(child)
  const unregister = onCleanup(() => void child.kill('SIGKILL'))
  return new Promise<MemoryResult>((resolve, reject) => {
    child.once('message', (result: MemoryResult) => resolve(result))
    child.once('exit', (code) =>
      reject(new Error(`bench memory child for ${store} exited with ${code} before reporting`)),
    )
  }).finally(() => void unregister())
}

const CART = { items: { 'sku-0': 1, 'sku-1': 1, 'sku-2': 2, 'sku-3': 1, 'sku-4': 3 } }

interface Filler {
  put(i: number): Promise<void>
  /** Sessions held. Called after the measurement, it also keeps the store alive until then. */
  count(): Promise<number>
}

function filler(store: MemoryStoreId): Filler {
  if (store === 'concord-memory') {
    const concord = new MemoryStore()
    const put = async (i: number) => {
      const now = Date.now()
      // The id as the middleware makes it: randomUUID() returns a rope of ~20 string pieces
      // (~480 bytes) until something flattens it, and the middleware's id check (a regex) does.
      const id = randomUUID()
      if (!isValidSessionId(id)) throw new Error('bench memory: bad id')
      const result = await concord.save(id, {
        set: { user: JSON.stringify(`user-${i}`), cart: JSON.stringify(CART) },
        unset: [],
        cookie: {},
        createdAt: now,
        expiresAt: now + MAX_AGE_MS,
        idleTimeout: MAX_AGE_MS,
        userId: null,
        expectedVersion: null,
      })
      if (!result.ok) throw new Error('bench memory: concord save failed')
    }
    return { put, count: () => concord.count() }
  }
  const legacy: LegacyStore =
    store === 'es-memory'
      ? new expressSession.MemoryStore()
      : new (memorystore(expressSession))({ checkPeriod: MAX_AGE_MS })
  const put = (i: number) =>
    new Promise<void>((resolve, reject) => {
      // express-session's ids are uid-safe(24): 32 base64url characters.
      const session = {
        cookie: new expressSession.Cookie({ maxAge: MAX_AGE_MS, sameSite: 'lax' }),
        user: `user-${i}`,
        cart: structuredClone(CART),
      }
      legacy.set(randomBytes(24).toString('base64url'), session, (err) =>
        err ? reject(err) : resolve(),
      )
    })
  const count = () =>
    new Promise<number>((resolve, reject) =>
      legacy.length((err, n) => (err ? reject(err) : resolve(n ?? 0))),
    )
  return { put, count }
}

function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('bench memory: run with --expose-gc')
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

async function child(store: MemoryStoreId, sessions: number): Promise<void> {
  const { put, count } = filler(store)
  await put(-1) // let the store allocate its first structures outside the window
  const before = heapAfterGc()
  for (let i = 0; i < sessions; i++) await put(i)
  const after = heapAfterGc()
  const held = await count()
  if (held !== sessions + 1)
    throw new Error(`bench memory: ${store} holds ${held} sessions, expected ${sessions + 1}`)
  process.send!({ store, sessions, heapDeltaBytes: after - before } satisfies MemoryResult)
  process.exit(0)
}

if (require.main === module) {
  child(process.argv[2] as MemoryStoreId, Number(process.argv[3])).catch((err: Error) => {
    console.error(err.stack)
    process.exit(1)
  })
}
