/**
 * Tracing on Node's diagnostics_channel, as undici and fastify publish theirs, so an
 * OpenTelemetry instrumentation or a metrics exporter can subscribe without code in the app:
 * https://nodejs.org/api/diagnostics_channel.html#class-tracingchannel
 *
 * Each operation is a TracingChannel (`tracing:concord-session:load:start`, `:end`,
 * `:asyncStart`, `:asyncEnd`, `:error`). While nobody subscribes, a call checks
 * `hasSubscribers` and goes straight to the store: no context object, no hash, no timer.
 */
import diagnostics_channel from 'node:diagnostics_channel'
import { performance } from 'node:perf_hooks'
import type { IdHashCache } from './id-hash-cache.js'

/** What every published context carries. */
export interface TracedContext {
  /** The keyed hash of the session id (`hashSessionId(id, idHashKey)`), never the id itself. */
  sessionId: string
  /** ms the operation took, from its start to its settling; set before `asyncEnd` and `error`. */
  duration?: number
  /** The store's failure, a StoreError (set by TracingChannel on `error`). */
  error?: unknown
}

/** `concord-session:load`: reading a session at the start of a request, or `reload()`. */
export interface LoadContext extends TracedContext {
  /** Whether the load also touched the idle expiry (a request's load does). */
  touch: boolean
  /** Whether a live session was found. Set when the load settles. */
  found?: boolean
}

/** `concord-session:save`: one write of a session, with its retries on conflict. */
export interface SaveContext extends TracedContext {
  /** Requests whose changes this write carries (concurrent saves of one session are batched). */
  batched: number
  /** Whether the write creates the session. */
  created: boolean
  /** Store calls made: 1, plus one per retry. */
  attempts: number
  /** Attempts the store answered with a conflict (another process saved first). */
  conflicts: number
  /** Attempts after the first: `attempts - 1`. */
  retries: number
  /** How it ended, when it did not throw: written, the session was gone, or it had expired. */
  outcome?: 'saved' | 'gone' | 'expired'
  /** The version written, when `outcome` is `'saved'`. */
  version?: number
}

/** `concord-session:destroy`: removing a session from the store. */
export interface DestroyContext extends TracedContext {
  /** What asked for it. */
  reason: 'destroy' | 'regenerate' | 'unset' | 'expired'
}

/** `concord-session:touch`: `req.session.touch()`. */
export type TouchContext = TracedContext

/**
 * The channels, by name. Subscribe with `diagnostics_channel.tracingChannel(name).subscribe(...)`
 * or through these objects.
 *
 * @example
 * ```ts
 * import { channels } from 'concord-session'
 * channels.save.subscribe({ asyncEnd: (ctx) => saveSeconds.observe(ctx.duration / 1000) })
 * ```
 */
export const channels = {
  load: diagnostics_channel.tracingChannel<unknown, LoadContext>('concord-session:load'),
  save: diagnostics_channel.tracingChannel<unknown, SaveContext>('concord-session:save'),
  destroy: diagnostics_channel.tracingChannel<unknown, DestroyContext>('concord-session:destroy'),
  touch: diagnostics_channel.tracingChannel<unknown, TouchContext>('concord-session:touch'),
}

/**
 * Runs `run` inside `channel`'s trace with `context`, timing it. Call only after checking
 * `channel.hasSubscribers`, so an unobserved call builds nothing.
 */
export function traced<T, C extends TracedContext>(
  channel: diagnostics_channel.TracingChannel<unknown, C>,
  context: C,
  run: () => Promise<T>,
): Promise<T> {
  const started = performance.now()
  return channel.tracePromise(async () => {
    try {
      return await run()
    } finally {
      context.duration = performance.now() - started
    }
  }, context)
}

/**
 * A load, traced while someone listens; `found` says whether it found a live session. Returns
 * the store's promise as it is otherwise, so an unobserved load costs one check.
 *
 * @example
 * ```ts
 * const record = await tracedLoad(hashes, id, false, () => store.load(id))
 * ```
 */
export function tracedLoad<R>(
  hashes: IdHashCache,
  id: string,
  touch: boolean,
  load: () => Promise<R | null>,
): Promise<R | null> {
  if (!channels.load.hasSubscribers) return load()
  const context: LoadContext = { sessionId: hashes.get(id), touch }
  return traced(channels.load, context, async () => {
    const record = await load()
    context.found = record !== null
    return record
  })
}

/**
 * A destroy, traced while someone listens.
 *
 * @example
 * ```ts
 * await tracedDestroy(hashes, id, 'destroy', () => store.destroy(id))
 * ```
 */
export function tracedDestroy(
  hashes: IdHashCache,
  id: string,
  reason: DestroyContext['reason'],
  destroy: () => Promise<void>,
): Promise<void> {
  if (!channels.destroy.hasSubscribers) return destroy()
  return traced(channels.destroy, { sessionId: hashes.get(id), reason }, destroy)
}

/**
 * A touch, traced while someone listens.
 *
 * @example
 * ```ts
 * await tracedTouch(hashes, id, () => store.touch(id, expiresAt))
 * ```
 */
export function tracedTouch(
  hashes: IdHashCache,
  id: string,
  touch: () => Promise<void>,
): Promise<void> {
  if (!channels.touch.hasSubscribers) return touch()
  return traced(channels.touch, { sessionId: hashes.get(id) }, touch)
}

/**
 * A save, traced: `write` gets the context to count its attempts and conflicts on. Call only
 * after checking `channels.save.hasSubscribers`.
 *
 * @example
 * ```ts
 * await tracedSave(hashes, id, 1, true, (trace) => writeSaves(saves, false, trace))
 * ```
 */
export function tracedSave(
  hashes: IdHashCache,
  id: string,
  batched: number,
  created: boolean,
  write: (trace: SaveContext) => Promise<void>,
): Promise<void> {
  const context: SaveContext = {
    sessionId: hashes.get(id),
    batched,
    created,
    attempts: 0,
    conflicts: 0,
    retries: 0,
  }
  return traced(channels.save, context, () => write(context))
}
