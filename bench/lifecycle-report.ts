/**
 * The "Lifecycle features" section of the report: one table per feature, each followed by what
 * its rows and columns measure.
 */
import type { LifecycleResults } from './lifecycle.js'
import type { ObserverRow, TouchResult, TouchVariant } from './lifecycle-child.js'

const STORE_LABELS: Record<TouchResult['store'], string> = {
  file: 'concord-session + FileStore',
  postgres: 'concord-session + PostgresStore',
  'pg-simple': 'connect-pg-simple through the express-session drop-in',
}

/**
 * The section's markdown lines, from its `##` heading on.
 *
 * @example
 * ```ts
 * out.push(...renderLifecycle(results.lifecycle))
 * ```
 */
export function renderLifecycle(l: LifecycleResults): string[] {
  const c = l.config
  const out: string[] = ['## Lifecycle features', '']
  out.push(
    'What each feature costs and saves, measured in process: a child process (from the compiled ' +
      'tree) drives the middleware with plain request and response objects, no HTTP, so the CPU ' +
      "is the middleware's, its store client's and a cart handler's only. The two setups of " +
      'each table run in the same process, alternating round by round.',
    '',
  )

  out.push('### Touch throttling (`touchAfter`)', '')
  out.push(
    `One signed-in session (a user and a 5-item cart) read ${c.touchReads} times, one read at a ` +
      `time, **one read every ${seconds(c.spacingMs)} on the session's clock** (the bench moves ` +
      '`Date.now`; nothing waits), after ' +
      `${c.touchWarmup} reads to warm up, in ${c.touchRounds} rounds. "none": every read moves ` +
      `the idle expiry, so every read writes it. "${seconds(c.touchAfterMs)}": ` +
      `\`touchAfter: ${c.touchAfterMs}\`, a read writes it only once that would move it by ` +
      `${seconds(c.touchAfterMs)} or more. With reads every r seconds, at most about ` +
      `r / touchAfter of reads write.`,
    '',
  )
  if (l.touch.length > 0) {
    out.push(
      '| Store | touchAfter | Store writes per 1000 reads | Writes counted (over reads) | µs CPU per read, Node | µs CPU per read, PostgreSQL backend | µs elapsed per read | Stored expiry behind the exact one, at the end |',
      '|---|---|--:|---|--:|--:|--:|--:|',
    )
    for (const t of l.touch)
      for (const v of t.variants) out.push(touchRow(STORE_LABELS[t.store], v))
    out.push('')
  }
  for (const skipped of l.skipped) out.push(`Not measured: ${skipped}.`, '')
  out.push(
    '- **Store writes per 1000 reads**: for the FileStore, the writing file system calls the ' +
      "process made (node:fs's `futimes`, `write`, `rename`, `fsync`, `unlink` and the like, " +
      'counted by a wrapper around node:fs; the touch is one `futimes`); for PostgreSQL, ' +
      "`n_tup_upd` of the store's own table in `pg_stat_user_tables`: the rows PostgreSQL " +
      'says it updated (each one a new row version and WAL).',
    '- **µs CPU per read, Node**: user + sys time of the measuring process (`process.cpuUsage()`, ' +
      "every thread, so the file system calls' kernel time too) per read, the median over rounds.",
    '- **µs CPU per read, PostgreSQL backend**: user + sys time of the PostgreSQL process ' +
      "serving the store's one connection (`/proc/<pid>/stat`, 10 ms ticks), over all the reads, per read.",
    '- **µs elapsed per read**: the median over rounds of wall time per read, one read at a ' +
      'time: it includes waiting for the disk and the database (a PostgreSQL write commits, ' +
      "which waits for its WAL flush) and moves with the machine's load.",
    '- **Stored expiry behind the exact one**: what throttling gives up. After the last read, ' +
      'the expiry in the store is at most `touchAfter` earlier than without throttling, so an ' +
      'idle session may end that much sooner. (connect-pg-simple stores whole seconds.)',
    '- **connect-pg-simple through the drop-in**: its `touch()` writes only its `expire` column, ' +
      'not the stored session, so the drop-in judges whether a touch is due by the later of the ' +
      'expiry recorded in the session and the one this process last wrote (see docs/users.md, ' +
      'touch throttling).',
    '',
  )

  out.push('### Tracing on diagnostics_channel', '')
  out.push(
    'concord-session + MemoryStore, requests spread over 256 sessions, 16 in flight. ' +
      '"No subscriber": nothing subscribed to the `concord-session:*` tracing channels. ' +
      '"With a subscriber": a metrics exporter\'s, on `load`, `save`, `destroy` and `touch`: it ' +
      'counts each operation and sums its duration.',
    '',
  )
  out.push(
    ...observerTable(
      l.tracing,
      ['No subscriber', 'With a subscriber', 'Traced operations the subscriber saw per request'],
      { read: 'Read (`GET /cart`)', write: 'Write (`POST /cart/add/:item`)' },
    ),
  )

  out.push('### Lifecycle events (`onEvent`)', '')
  out.push(
    'concord-session + MemoryStore, 16 in flight. "No listener": no `onEvent`. "With a ' +
      'listener": an audit log\'s, which turns each event into a JSON line (kept in memory, ' +
      'written nowhere). Reads fire no event, so that row is the cost of having a listener at ' +
      'all; a sign-in (a new session saved: `created`) followed by a sign-out (`destroy()`: ' +
      '`destroyed`) fires two, and that row is per pair of requests.',
    '',
  )
  out.push(
    ...observerTable(l.events, ['No listener', 'With a listener', 'Events per operation'], {
      read: 'Read (`GET /cart`), µs per request',
      'sign-in + sign-out': 'Sign-in + sign-out, µs per pair',
    }),
  )
  const o = l.tracing[0] ?? l.events[0]
  if (o)
    out.push(
      `Both tables: µs of CPU (user + sys of the process) per operation, the median over ` +
        `${o.rounds} rounds of ${o.opsPerRound.toLocaleString('en-US')} operations per setup ` +
        `after ${c.observerWarmup.toLocaleString('en-US')} to warm up; the difference is the ` +
        'median of per-round differences, each pair measured back to back, so it can come out ' +
        'below zero when the cost is smaller than the noise. The last column shows the observer ' +
        'was called.',
      '',
    )
  return out
}

function touchRow(store: string, v: TouchVariant): string {
  const perThousand = (v.writes / v.reads) * 1000
  const counted = Object.entries(v.writesBy)
    .map(([name, n]) => `${name} ${n}`)
    .join(', ')
  return (
    `| ${store} | ${v.touchAfterMs === null ? 'none' : seconds(v.touchAfterMs)} | ` +
    `${perThousand.toFixed(0)} | ${counted || 'none'} (${v.reads}) | ${v.nodeCpuUs.toFixed(0)} | ` +
    `${v.backendCpuUs === undefined ? 'n/a' : v.backendCpuUs.toFixed(0)} | ` +
    `${v.wallUs.toFixed(0)} | ${lag(v.lagMs)} |`
  )
}

function observerTable(
  rows: readonly ObserverRow[],
  [without, withIt, seen]: [string, string, string],
  labels: Partial<Record<ObserverRow['workload'], string>>,
): string[] {
  if (rows.length === 0) return ['Not measured in this run.', '']
  const out = [
    `| Workload | ${without}, µs CPU | ${withIt}, µs CPU | Difference, µs | ${seen} |`,
    '|---|--:|--:|--:|--:|',
  ]
  for (const r of rows)
    out.push(
      `| ${labels[r.workload] ?? r.workload} | ${r.plainUs.toFixed(1)} | ${r.observedUs.toFixed(1)} | ` +
        `${signed(r.diffUs)} | ${r.seenPerOp.toFixed(2)} |`,
    )
  out.push('')
  return out
}

/** One decimal, with its sign; a difference that rounds to zero is shown as 0.0. */
function signed(us: number): string {
  const text = Math.abs(us).toFixed(1)
  return text === '0.0' ? text : `${us > 0 ? '+' : '−'}${text}`
}

/** Seconds, one decimal; connect-pg-simple's whole seconds can put it a little ahead. */
function lag(ms: number): string {
  const text = (Math.abs(ms) / 1000).toFixed(1)
  return text === '0.0' || ms >= 0 ? `${text} s` : `${text} s ahead`
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`
}
