/**
 * Small pieces every store's renewal shares (see `Renewable` in store.ts): the check of its
 * options, so a direct caller with a nonsense grace gets a clear error instead of a forward that
 * never or always expires (the middleware always sends good ones), and the marking of a record
 * loaded through a forward.
 */
import type { RenewOptions, SessionRecord } from './store.js'

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

/**
 * The record a load through a forward found under `to`, marked as renewed (or null). A record
 * already marked came through more forwards: it keeps the last one's id.
 *
 * @example
 * ```ts
 * return forwarded(await store.load(forward.to, options), forward.to)
 * ```
 */
export function forwarded(record: SessionRecord | null, to: string): SessionRecord | null {
  if (record !== null && record.renewedTo === undefined) record.renewedTo = to
  return record
}
