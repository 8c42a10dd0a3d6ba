/**
 * RedisStore's load: one script call, and one more per hop when the id was renewed within its
 * grace and forwards to the session it moved to.
 */
import type { LoadOptions, SessionRecord } from '../../lib/store.js'
import type { LifecycleListeners } from '../../lib/store-notices.js'
import { CONNECT_REDIS_IDLE_ARG, loadLegacy } from './connect-redis.js'
import { asReply, parseHash, unexpected } from './records.js'
import { LOAD_SCRIPT, type Script } from './scripts.js'
import { MAX_HOPS } from './renew.js'

/** What a load needs of the store. */
export interface LoadContext {
  /** Runs `script` on the session's key (and its connect-redis key, when reading those is on). */
  script(script: Script, id: string, args: string[]): Promise<unknown>
  notices: LifecycleListeners
}

/**
 * Loads the session `id` (at `key`) as of `now`: see RedisStore.load.
 *
 * @example
 * ```ts
 * const record = await loadSession(context, id, 'sess:' + id, { touchAt: now }, now)
 * ```
 */
export function loadSession(
  store: LoadContext,
  id: string,
  key: string,
  options: LoadOptions,
  now: number,
): Promise<SessionRecord | null> {
  const args = [
    String(now),
    options.touchAt === undefined ? '' : String(options.touchAt),
    options.absoluteTimeout === undefined ? '' : String(options.absoluteTimeout),
    CONNECT_REDIS_IDLE_ARG,
  ]
  // Promises rather than an async function, and the reply read in a plain function: a load is
  // on every request.
  return store
    .script(LOAD_SCRIPT, id, args)
    .then((reply) =>
      isForward(reply)
        ? follow(store, id, key, args, reply, now)
        : loaded(store, id, key, id, reply, now),
    )
}

/** An id renewed within its grace: load the session it moved to (a round trip per hop). */
async function follow(
  store: LoadContext,
  id: string,
  key: string,
  args: string[],
  reply: unknown,
  now: number,
): Promise<SessionRecord | null> {
  let to = id
  for (let hop = 0; isForward(reply) && hop < MAX_HOPS; hop++)
    reply = await store.script(LOAD_SCRIPT, (to = reply[1]), args)
  return loaded(store, id, key, to, reply, now)
}

/** The record in a load script's reply for `id`, found under `to`, or null. */
function loaded(
  store: LoadContext,
  id: string,
  key: string,
  to: string,
  reply: unknown,
  now: number,
): SessionRecord | null {
  if (reply === null || isForward(reply)) return null
  const tagged = asReply(reply, key)
  switch (tagged[0]) {
    case 'hash':
      return to === id ? parseHash(key, tagged) : { ...parseHash(key, tagged), renewedTo: to }
    case 'legacy':
      return loadLegacy(key, tagged, now)
    case 'expired':
      store.notices.expired(id, 'load', tagged[1] || undefined)
      return null
    default:
      throw unexpected(key, tagged)
  }
}

/** A script's answer for an id renewed within its grace: `['forward', newId]`. */
function isForward(reply: unknown): reply is ['forward', string] {
  return Array.isArray(reply) && reply[0] === 'forward' && typeof reply[1] === 'string'
}
