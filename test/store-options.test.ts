/**
 * A store given an option it does not have throws at construction, listing the options it
 * has, and says what to use instead of the options of the stores people come from
 * (connect-redis, session-file-store, memorystore). In-process stores warn once under
 * NODE_ENV=production, as express-session's MemoryStore does.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Redis from 'ioredis'
import { MemoryStore } from '../stores/memory/store'
import { RedisStore } from '../entries/redis'
import { FileStore } from '../entries/file'
import { MemoryStore as DropInMemoryStore } from '../entries/express-session'
import { Pool } from 'pg'
import { PostgresStore } from '../entries/postgres'
import { LayeredStore } from '../entries/layered'

describe('unknown store options are a TypeError at construction', () => {
  it("MemoryStore lists its options, and says what replaces ttl and memorystore's checkPeriod", () => {
    expect(() => new MemoryStore({ maxx: 10 } as never)).toThrow(
      'MemoryStore: unknown option "maxx" (did you mean "max"?). Known options: max, sweepInterval',
    )
    expect(() => new MemoryStore({ ttl: 1000 } as never)).toThrow(
      /unknown option "ttl": .*session\(\{ cookie: \{ maxAge \} \}\)/,
    )
    expect(() => new MemoryStore({ checkPeriod: 1000 } as never)).toThrow(
      /"checkPeriod": that is memorystore's option; use sweepInterval/,
    )
    const ok = new MemoryStore({ max: 10, sweepInterval: 1000 })
    void ok.close()
  })

  it("RedisStore lists its options, and says what to use instead of connect-redis's ttl", () => {
    const client = new Redis({ lazyConnect: true })
    try {
      expect(() => new RedisStore({ client, ttl: 86_400 } as never)).toThrow(
        /RedisStore: unknown option "ttl": that is connect-redis's option; a session's lifetime follows its cookie here: set session\(\{ cookie: \{ maxAge \} \}\), and idleTimeout for browser-session cookies\. Known options: client, prefix, legacyPrefix, timeout/,
      )
      expect(() => new RedisStore({ client, disableTouch: true } as never)).toThrow(
        /"disableTouch": that is connect-redis's option/,
      )
      expect(() => new RedisStore({ client, prefx: 'a:' } as never)).toThrow(
        /unknown option "prefx" \(did you mean "prefix"\?\)/,
      )
      expect(new RedisStore({ client, prefix: 'a:', timeout: 500 })).toBeInstanceOf(RedisStore)
    } finally {
      client.disconnect()
    }
  })

  it("FileStore lists its options, and says what to use instead of session-file-store's ttl and path", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'concord-store-options-'))
    try {
      expect(() => new FileStore({ dir, ttl: 3600 } as never)).toThrow(
        /FileStore: unknown option "ttl": that is session-file-store's option; .*Known options: dir, reapInterval/,
      )
      expect(() => new FileStore({ path: dir } as never)).toThrow(
        /"path": that is session-file-store's option; pass the directory as dir/,
      )
      const store = new FileStore({ dir, fsync: false })
      await store.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("PostgresStore lists its options, and says what to use instead of connect-pg-simple's", async () => {
    const pool = new Pool({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' }) // never connects here
    try {
      expect(() => new PostgresStore({ pool, ttl: 3600 } as never)).toThrow(
        /PostgresStore: unknown option "ttl": that is connect-pg-simple's option; .*Known options: pool, table, schema, createTable, pruneInterval, timeout, legacyTable/,
      )
      expect(() => new PostgresStore({ pool, tableName: 'session' } as never)).toThrow(
        /"tableName": .*use table \(and legacyTable: 'session'/,
      )
      expect(() => new PostgresStore({ pool, tabel: 'x' } as never)).toThrow(
        /unknown option "tabel" \(did you mean "table"\?\)/,
      )
    } finally {
      await pool.end()
    }
  })

  it('LayeredStore lists its options', async () => {
    const [hot, cold] = [new MemoryStore(), new MemoryStore()]
    expect(
      () => new LayeredStore({ hot, cold, singleProcess: true, hotTTL: 1000 } as never),
    ).toThrow(
      /LayeredStore: unknown option "hotTTL" \(did you mean "hotTtl"\?\)\. Known options: hot, cold, hotTtl, singleProcess, hotRetryAfter/,
    )
    await hot.close()
    await cold.close()
  })

  it("the drop-in's MemoryStore lists its options too", () => {
    expect(() => new DropInMemoryStore({ checkperiod: 10 } as never)).toThrow(
      /unknown option "checkperiod" \(did you mean "checkPeriod"\?\)/,
    )
  })
})

describe('MemoryStore under NODE_ENV=production', () => {
  const nodeEnv = process.env.NODE_ENV
  afterEach(() => {
    process.env.NODE_ENV = nodeEnv
    jest.restoreAllMocks()
  })

  it('prints one warning per process, however many stores are made, as express-session does', () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => {})
    process.env.NODE_ENV = 'production'
    jest.isolateModules(() => {
      const { MemoryStore: Fresh } =
        require('../stores/memory/store') as typeof import('../stores/memory/store')
      const { ExpressSessionMemoryStore: FreshDropIn } =
        require('../lib/compat/memory-store') as typeof import('../lib/compat/memory-store')
      const stores = [new Fresh(), new Fresh(), new FreshDropIn()]
      for (const store of stores) void store.close()
    })
    expect(warn).toHaveBeenCalledTimes(1)
    expect(warn.mock.calls[0]![0]).toMatch(
      /MemoryStore keeps sessions in this process only.*Use RedisStore .* or FileStore .* in production/,
    )
  })

  it('prints nothing outside production', () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => {})
    process.env.NODE_ENV = 'development'
    jest.isolateModules(() => {
      const { MemoryStore: Fresh } =
        require('../stores/memory/store') as typeof import('../stores/memory/store')
      void new Fresh().close()
    })
    expect(warn).not.toHaveBeenCalled()
  })
})
