/**
 * RedisStore's call guard on its own: the bound, failing fast while down, the single PING that
 * ends an outage, and one timer for all calls in flight. Calls here are promises the test
 * settles itself; nothing imitates Redis.
 */
import { StoreError } from '../../lib/store'
import { CallGuard } from '../../stores/redis/guard'

/** A promise and its settle functions. */
function deferred<T = unknown>() {
  let resolve!: (value: T) => void
  let reject!: (err: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

class ReplyError extends Error {}

function guard() {
  const pings: ReturnType<typeof deferred>[] = []
  const g = new CallGuard(
    (err) => err instanceof ReplyError,
    () => {
      const ping = deferred()
      pings.push(ping)
      return ping.promise
    },
    60_000,
  )
  return { g, pings }
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(StoreError)
  expect((err as StoreError).status).toBe(503)
  return (err as StoreError).code
}

describe('CallGuard', () => {
  it('rejects a call that never settles at its deadline, naming it, and ignores its late result', async () => {
    const { g } = guard()
    const never = deferred()
    const call = g.run('load of', 'sess:x', Date.now() + 20, 20, () => never.promise)
    const err = await call.then(
      () => undefined,
      (e: unknown) => e as StoreError,
    )
    expect(err).toBeInstanceOf(StoreError)
    expect(err!.code).toBe('ETIMEDOUT')
    expect(err!.message).toBe(
      'RedisStore: load of sess:x timed out after 20 ms (is Redis reachable?)',
    )
    never.reject(new Error('late')) // settles after the bound: dropped, not unhandled
    expect(g.down).toBe(true)
  })

  it('while down, fails calls at once without running them, with one PING in flight; an answered PING ends it', async () => {
    const { g, pings } = guard()
    await codeOf(g.run('load of', 'k', Date.now() + 10, 10, () => new Promise(() => {})))
    let ran = 0
    const work = async () => {
      ran++
      return 'ok'
    }
    const codes = await Promise.all(
      Array.from({ length: 10 }, () =>
        codeOf(g.run('load of', 'k', Date.now() + 60_000, 60_000, work)),
      ),
    )
    expect(codes).toEqual(Array(10).fill('EUNAVAILABLE'))
    expect(ran).toBe(0)
    expect(pings).toHaveLength(1)

    // Redis answers the PING, even with an error reply: it is up.
    pings[0]!.reject(new ReplyError('LOADING Redis is loading the dataset in memory'))
    await new Promise((resolve) => setImmediate(resolve))
    expect(g.down).toBe(false)
    expect(await g.run('load of', 'k', Date.now() + 60_000, 60_000, work)).toBe('ok')
    expect(ran).toBe(1)
  })

  it('stays down when the PING fails to connect, and the next call sends the next PING', async () => {
    const { g, pings } = guard()
    await codeOf(g.run('save of', 'k', Date.now(), 0, () => new Promise(() => {})))
    await codeOf(g.run('save of', 'k', Date.now() + 60_000, 60_000, async () => 'x'))
    pings[0]!.reject(new Error('connect ECONNREFUSED'))
    await new Promise((resolve) => setImmediate(resolve))
    expect(g.down).toBe(true)
    expect(await codeOf(g.run('save of', 'k', Date.now() + 60_000, 60_000, async () => 'x'))).toBe(
      'EUNAVAILABLE',
    )
    expect(pings).toHaveLength(2)
  })

  it('counts an error reply as Redis answering, and a connection failure as Redis down', async () => {
    const { g } = guard()
    expect(
      await codeOf(
        g.run('load of', 'k', Date.now() + 60_000, 60_000, () =>
          Promise.reject(new ReplyError('WRONGTYPE')),
        ),
      ),
    ).toBe('EREDIS')
    expect(g.down).toBe(false)
    const err = await g
      .run('load of', 'k', Date.now() + 60_000, 60_000, () =>
        Promise.reject(new Error('Connection is closed.')),
      )
      .catch((e: StoreError) => e)
    expect(err.code).toBe('EREDIS')
    expect(err.message).toBe('RedisStore: load of k failed: Connection is closed.')
    expect((err.cause as Error).message).toBe('Connection is closed.')
    expect(g.down).toBe(true)
  })

  it('serves many calls in flight with one timer, not one each', async () => {
    const { g } = guard()
    const spy = jest.spyOn(global, 'setTimeout')
    try {
      const calls = Array.from({ length: 100 }, () => deferred<string>())
      const results = calls.map((c) =>
        g.run('load of', 'k', Date.now() + 60_000, 60_000, () => c.promise),
      )
      calls.forEach((c, i) => c.resolve(String(i)))
      expect(await Promise.all(results)).toEqual(calls.map((_, i) => String(i)))
      expect(spy.mock.calls.length).toBeLessThanOrEqual(2)
      // A call with an earlier deadline re-arms the timer for itself.
      const soon = g.run('load of', 'k', Date.now() + 5, 5, () => new Promise<never>(() => {}))
      expect(await codeOf(soon)).toBe('ETIMEDOUT')
    } finally {
      spy.mockRestore()
    }
  })
})
