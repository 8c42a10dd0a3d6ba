/**
 * A real Redis client that runs an action of the test's own just before one chosen script
 * call, to put something else at a chosen point between a store's steps (or to fail that call
 * as a broken connection would). Everything else goes straight to the client.
 */
import type { RedisClient } from '../../entries/redis'

/**
 * `client`, whose first EVALSHA of the script `sha` first awaits `before` (a throw fails that
 * call instead). Works for ioredis (`evalsha`) and node-redis (`sendCommand`) clients.
 */
export function hooked(client: RedisClient, sha: string, before: () => Promise<void>): RedisClient {
  let done = false
  const run = async (scriptSha: unknown) => {
    if (scriptSha !== sha || done) return
    done = true
    await before()
  }
  return new Proxy(client, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown
      if (typeof value !== 'function') return value
      const fn = value as (...a: unknown[]) => unknown
      if (prop === 'evalsha')
        return async (...args: unknown[]) => {
          await run(args[0])
          return fn.apply(target, args)
        }
      if (prop === 'sendCommand')
        return async (...args: unknown[]) => {
          const command = args.find(Array.isArray) as string[] | undefined
          if (command?.[0] === 'EVALSHA') await run(command[1])
          return fn.apply(target, args)
        }
      return fn.bind(target)
    },
  })
}

/** One command on the node that holds `key`, through a client of either library. */
export function commandOn(client: RedisClient, key: string, args: string[]): Promise<unknown> {
  const c = client as unknown as {
    call?: (...a: string[]) => Promise<unknown>
    sendCommand(...a: unknown[]): Promise<unknown>
    nodeClient?: unknown
  }
  if (typeof c.call === 'function') return c.call(...args)
  if (c.nodeClient !== undefined) return c.sendCommand(key, false, args)
  return c.sendCommand(args)
}
