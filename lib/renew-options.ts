/**
 * The check every store's `renew` makes of its options (see `Renewable` in store.ts), so a
 * direct caller with a nonsense grace gets a clear error instead of a forward that never or
 * always expires. The middleware always sends good ones.
 */
import type { RenewOptions } from './store.js'

/**
 * Throws a TypeError unless `now` is epoch ms and `graceMs` a number of ms, zero or more.
 *
 * @example
 * ```ts
 * checkRenewOptions('MemoryStore', { now: Date.now(), graceMs: 30_000 }) // passes
 * checkRenewOptions('FileStore', { now: Date.now(), graceMs: -1 })       // throws
 * ```
 */
export function checkRenewOptions(store: string, options: RenewOptions): void {
  const { now, graceMs } = options ?? ({} as Partial<RenewOptions>)
  if (
    typeof now !== 'number' ||
    !Number.isFinite(now) ||
    typeof graceMs !== 'number' ||
    !Number.isFinite(graceMs) ||
    graceMs < 0
  )
    throw new TypeError(
      `${store}: renew(oldId, newId, { now, graceMs }) needs now in epoch ms and graceMs ` +
        `as ms >= 0, got now ${String(now)}, graceMs ${String(graceMs)}`,
    )
}
