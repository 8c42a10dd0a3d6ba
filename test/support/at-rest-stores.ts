/**
 * Every concord store, real, each with a way to read everything it holds as text: the Redis
 * keys under its own prefix with their values, the file names and contents of its own
 * directory, the rows of its own PostgreSQL table. Tests of protection at rest look in there
 * for what must never be stored (a raw id, a value in clear).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Redis from 'ioredis'
import type pg from 'pg'
import { FileStore } from '../../stores/file/store'
import { LayeredStore } from '../../stores/layered'
import { MemoryStore } from '../../stores/memory/store'
import { PostgresStore } from '../../stores/postgres/store'
import { RedisStore } from '../../stores/redis/store'
import { isClosable, type Store } from '../../lib/store'
import { dropSchema, makePool, testSchema } from './postgres'
import { redisUrl, testPrefix } from './redis-server'

export interface InspectedStore {
  store: Store
  /** Everything the store holds, as text; undefined where the store keeps it in memory. */
  dump(): Promise<string | undefined>
  /** Replaces the stored text of `key` in the session stored under `storedId`. */
  setValue(storedId: string, key: string, text: string): Promise<void>
  /** The stored text of `key` in the session stored under `storedId`. */
  getValue(storedId: string, key: string): Promise<string | undefined>
}

export interface StoreKind {
  name: string
  make(): Promise<InspectedStore>
}

/** Opens and closes what the stores of one test file share; call `close()` in afterAll. */
export class AtRestStores {
  readonly #redis = new Redis(redisUrl())
  readonly #root = mkdtempSync(join(tmpdir(), 'concord-at-rest-'))
  readonly #schema = testSchema('atrest')
  #pool: pg.Pool | undefined
  #tables = 0
  readonly #stores: Store[] = []

  constructor() {
    this.#redis.on('error', () => {})
  }

  readonly kinds: StoreKind[] = [
    { name: 'MemoryStore', make: () => this.#memory(new MemoryStore()) },
    { name: 'LayeredStore', make: () => this.layered() },
    { name: 'RedisStore', make: () => this.redis() },
    { name: 'FileStore', make: () => this.file() },
    { name: 'PostgresStore', make: () => this.postgres() },
  ]

  /** A MemoryStore hot layer over a FileStore: what it holds at rest is the cold files. */
  async layered(): Promise<InspectedStore> {
    const cold = await this.file()
    const store = new LayeredStore({
      hot: new MemoryStore(),
      cold: cold.store,
      singleProcess: true,
    })
    return { ...(await this.#memory(store)), dump: cold.dump }
  }

  async #memory(store: Store): Promise<InspectedStore> {
    this.#stores.push(store)
    return {
      store,
      dump: async () => undefined,
      getValue: async (id, key) => (await store.load(id))?.data[key],
      setValue: async (id, key, text) => {
        const record = (await store.load(id))!
        await store.save(id, {
          set: { [key]: text },
          unset: [],
          cookie: record.cookie,
          createdAt: record.createdAt,
          expiresAt: record.expiresAt,
          idleTimeout: record.idleTimeout,
          userId: record.userId ?? null,
          expectedVersion: record.version,
        })
      },
    }
  }

  async redis(
    options: { legacyPrefix?: boolean } = {},
  ): Promise<InspectedStore & { prefix: string }> {
    const prefix = testPrefix('atrest')
    const client = this.#redis
    const store = new RedisStore({
      client,
      prefix,
      timeout: 60_000,
      ...(options.legacyPrefix ? { legacyPrefix: prefix } : {}),
    })
    this.#stores.push(store)
    const keys = async () => {
      const found: string[] = []
      let cursor = '0'
      do {
        const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', '1000')
        cursor = next
        found.push(...batch)
      } while (cursor !== '0')
      return found.sort()
    }
    return {
      store,
      prefix,
      dump: async () => {
        const parts: string[] = []
        for (const key of await keys()) {
          const type = await client.type(key)
          const value =
            type === 'hash'
              ? await client.hgetall(key)
              : type === 'string'
                ? await client.get(key)
                : type === 'set'
                  ? await client.smembers(key)
                  : type === 'zset'
                    ? await client.zrange(key, '0', '-1')
                    : type
          parts.push(key, JSON.stringify(value))
        }
        return parts.join('\n')
      },
      getValue: async (id, key) => (await client.hget(prefix + id, key)) ?? undefined,
      setValue: async (id, key, text) => void (await client.hset(prefix + id, key, text)),
    }
  }

  async file(): Promise<InspectedStore & { dir: string }> {
    const dir = mkdtempSync(join(this.#root, 'store-'))
    const store = new FileStore({ dir, lockTimeout: 60_000 })
    this.#stores.push(store)
    const files = (at: string): string[] =>
      readdirSync(at).flatMap((name) => {
        const path = join(at, name)
        return statSync(path).isDirectory() ? files(path) : [path]
      })
    const fileOf = (id: string) =>
      files(dir).find((path) => readFileSync(path, 'utf8').includes(`"${id}"`))
    return {
      store,
      dir,
      dump: async () =>
        files(dir)
          .map((path) => `${path}\n${readFileSync(path, 'utf8')}`)
          .join('\n'),
      getValue: async (id, key) => {
        const path = fileOf(id)
        return path && (JSON.parse(readFileSync(path, 'utf8')).data?.[key] as string | undefined)
      },
      setValue: async (id, key, text) => {
        // Through the store, so the file keeps its checks: the value is what is tampered with.
        const record = (await store.load(id))!
        await store.save(id, {
          set: { [key]: text },
          unset: [],
          cookie: record.cookie,
          createdAt: record.createdAt,
          expiresAt: record.expiresAt,
          idleTimeout: record.idleTimeout,
          userId: record.userId ?? null,
          expectedVersion: record.version,
        })
      },
    }
  }

  async postgres(
    options: { legacyTable?: string } = {},
  ): Promise<InspectedStore & { table: string; schema: string; pool: pg.Pool }> {
    this.#pool ??= makePool()
    const pool = this.#pool
    const schema = this.#schema
    const table = `sessions_${++this.#tables}`
    const store = new PostgresStore({ pool, schema, table, timeout: 60_000, ...options })
    this.#stores.push(store)
    const at = `"${schema}"."${table}"`
    return {
      store,
      table,
      schema,
      pool,
      dump: async () => {
        await store.count() // creates the table if nothing was stored yet
        const { rows } = await pool.query(`SELECT * FROM ${at}`)
        return JSON.stringify(rows)
      },
      // The table holds each value's JSON text as a jsonb string.
      getValue: async (id, key) => {
        const { rows } = await pool.query(`SELECT data->>$2 AS v FROM ${at} WHERE id = $1`, [
          id,
          key,
        ])
        return (rows[0]?.v as string | null | undefined) ?? undefined
      },
      setValue: async (id, key, text) => {
        await pool.query(
          `UPDATE ${at} SET data = jsonb_set(data, ARRAY[$2], to_jsonb($3::text)) WHERE id = $1`,
          [id, key, text],
        )
      },
    }
  }

  async close(): Promise<void> {
    for (const store of this.#stores) if (isClosable(store)) await store.close().catch(() => {})
    if (this.#pool) {
      await this.#pool.end()
      await dropSchema(this.#schema)
    }
    await this.#redis.quit()
    rmSync(this.#root, { recursive: true, force: true })
  }
}
