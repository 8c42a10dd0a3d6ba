/**
 * express-session warns when its MemoryStore runs with NODE_ENV=production; so do concord's
 * in-process stores, once per process, since a deploy that forgot its store loses every
 * session on restart and cannot share them between processes.
 */
let warned = false

/**
 * Prints the warning once per process when NODE_ENV is "production".
 *
 * @example
 * ```ts
 * constructor() { warnInProduction('MemoryStore') }
 * ```
 */
export function warnInProduction(store: string): void {
  if (warned || process.env.NODE_ENV !== 'production') return
  warned = true
  console.warn(
    `Warning: concord-session ${store} keeps sessions in this process only: ` +
      'they are lost when it restarts and not shared with other processes. ' +
      'Use RedisStore (concord-session/redis) or FileStore (concord-session/file) in production.',
  )
}
