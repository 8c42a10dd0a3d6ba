/**
 * createStore(url): every scheme gives a working store of the right kind, closes what it opened,
 * loads only the client it needs, and answers a bad URL with a TypeError that names the schemes
 * and never shows a password. The stores are made in a child process
 * (test/fixtures/create-store-cases.ts), because createStore loads them with import().
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PG_URL, dropSchema, testSchema } from '../support/postgres'
import { redisUrl, testPrefix } from '../support/redis-server'

jest.setTimeout(60_000)

const REPO = join(__dirname, '..', '..')
const CASES = join(REPO, 'test', 'fixtures', 'create-store-cases.ts')
const dir = mkdtempSync(join(tmpdir(), 'concord-create-store-'))
const schema = testSchema('url')
const run = (args: string[]) =>
  execFileSync(process.execPath, ['--import', 'tsx', CASES, ...args], {
    cwd: REPO,
    encoding: 'utf8',
  })

type Outcome = {
  closedAtOnce?: boolean
  kind?: string
  roundTrip?: boolean
  afterClose?: string
  error?: string
  message?: string
  code?: string
}
let outcomes: Record<string, Outcome>

beforeAll(() => {
  outcomes = JSON.parse(
    run(['cases', redisUrl(), PG_URL, dir, schema, testPrefix('url')]),
  ) as Record<string, Outcome>
})
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true })
  await dropSchema(schema)
})

const SCHEMES = /memory:, file:<dir>, redis:\/\/, rediss:\/\/, postgres:\/\/ or postgresql:\/\//

describe('createStore', () => {
  it.each([
    ['memory', 'MemoryStore'],
    ['filePath', 'FileStore'],
    ['fileUrl', 'FileStore'],
    ['redis', 'RedisStore'],
    ['redisNode', 'RedisStore'],
    ['postgres', 'PostgresStore'],
    ['postgresql', 'PostgresStore'],
    ['layered', 'LayeredStore'],
    ['layeredMemoryHotOneProcess', 'LayeredStore'],
  ])('%s makes a working %s', (name, kind) => {
    expect(outcomes[name]).toMatchObject({ kind, roundTrip: true })
  })

  it.each(['redis', 'redisNode', 'postgres', 'postgresql'])(
    '%s: close() closes the connection it opened',
    (name) => {
      expect(outcomes[name]!.afterClose).toBe('StoreError')
    },
  )

  it.each([
    ['mysql', /unsupported scheme "mysql:"/],
    ['hostPort', /unsupported scheme "localhost:"/],
    ['text', /not a URL/],
    ['empty', /expected a store URL/],
    ['invalidUrl', /is not a valid URL/],
    ['layeredBad', /unsupported scheme "memcached:"/],
  ])('answers %s with a TypeError naming the schemes, without its password', (name, message) => {
    expect(outcomes[name]).toMatchObject({ error: 'TypeError' })
    expect(outcomes[name]!.message).toMatch(message)
    expect(outcomes[name]!.message).toMatch(SCHEMES)
    expect(outcomes[name]!.message).not.toContain('hunter2')
  })

  it('answers file: without a directory, and a bad option in the URL, with a TypeError saying what to write', () => {
    expect(outcomes.fileNoDir).toMatchObject({
      error: 'TypeError',
      message: expect.stringMatching(/file: needs a directory, e.g. file:.\/sessions/),
    })
    expect(outcomes.badTable).toMatchObject({
      error: 'TypeError',
      message: expect.stringMatching(/table must be a plain SQL identifier/),
    })
    expect(outcomes.badClient).toMatchObject({
      error: 'TypeError',
      message: expect.stringMatching(/write client=ioredis or client=node-redis/),
    })
  })

  it('refuses a memory: hot layer unless the app says it is one process', () => {
    expect(outcomes.layeredMemoryHot).toMatchObject({
      error: 'TypeError',
      message: expect.stringMatching(/singleProcess: true/),
    })
  })

  it.each(['pgUnreachable', 'redisUnreachable', 'redisNodeUnreachable'])(
    '%s: a store that cannot connect answers with a 503 StoreError that shows no password, and closes at once',
    (name) => {
      expect(outcomes[name]).toMatchObject({ error: 'StoreError', closedAtOnce: true })
      expect(outcomes[name]!.message).not.toContain('hunter2')
    },
  )

  it.each([
    ['memory:', { ioredis: false, redis: false, pg: false }],
    ['postgres://postgres@127.0.0.1:5432/test', { ioredis: false, redis: false, pg: true }],
    ['<redis>', { ioredis: true, redis: false, pg: false }],
    ['<redis>/?client=node-redis', { ioredis: false, redis: true, pg: false }],
  ])('%s loads only the client it needs', (url, loaded) => {
    expect(JSON.parse(run(['modules', url.replace('<redis>', redisUrl())]))).toEqual(loaded)
  })
})
