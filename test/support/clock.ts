/**
 * A test clock: fakes only `Date`, so the session's idea of "now" moves when the test says so
 * and nothing waits for real time. Timers, promises and I/O run as usual, so real stores and
 * supertest keep working. Expiry tests use it instead of sleeping past a short timeout, which a
 * loaded machine can overrun.
 *
 * @example
 * ```ts
 * const clock = useFakeDate()
 * clock.advance(31 * 60_000) // the session is now idle for 31 minutes
 * ```
 */
export function useFakeDate(): { advance(ms: number): void; now(): number } {
  let now = 0
  beforeEach(() => {
    jest.useFakeTimers({
      doNotFake: [
        'hrtime',
        'nextTick',
        'performance',
        'queueMicrotask',
        'setImmediate',
        'clearImmediate',
        'setInterval',
        'clearInterval',
        'setTimeout',
        'clearTimeout',
      ],
    })
    now = Date.now()
  })
  afterEach(() => {
    jest.useRealTimers()
  })
  return {
    advance(ms: number) {
      jest.setSystemTime((now += ms))
    },
    now: () => now,
  }
}
