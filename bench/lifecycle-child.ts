/**
 * One lifecycle measurement per process, run by bench/lifecycle.ts from the compiled tree:
 * `node bench/lifecycle-child.js '<job as JSON>'`. Prints its result as one JSON line.
 *
 * - `touch`: one session read again and again, with and without `touchAfter`, on one store;
 *   counts the writes that reach the store and the CPU per read.
 * - `tracing`: CPU per request with no diagnostics_channel subscriber, and with one.
 * - `events`: CPU per request with no `onEvent` listener, and with one.
 * - `at-rest`: CPU per request with raw ids, hashed ids, and hashed ids with encryption.
 *
 * Each compares its setups in the same process, round by round in ABBA order (ABC CBA for
 * three), so drift in the machine's load hits them alike.
 */
import { atRest } from './lifecycle-at-rest.js'
import type { LifecycleJob } from './lifecycle-jobs.js'
import { events, tracing } from './lifecycle-observers.js'
import { touch } from './lifecycle-touch.js'

export type {
  AtRestJob,
  AtRestMode,
  AtRestRow,
  LifecycleJob,
  ObserverJob,
  ObserverRow,
  TouchJob,
  TouchResult,
  TouchStore,
  TouchVariant,
} from './lifecycle-jobs.js'

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? 'null') as LifecycleJob | null
  if (!job || !['touch', 'tracing', 'events', 'at-rest'].includes(job.type))
    throw new Error(`bench lifecycle: unknown job ${process.argv[2]}`)
  const result =
    job.type === 'touch'
      ? await touch(job)
      : job.type === 'at-rest'
        ? await atRest(job)
        : job.type === 'tracing'
          ? await tracing(job)
          : await events(job)
  process.stdout.write(JSON.stringify(result) + '\n')
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: Error) => {
      console.error(err.stack ?? err.message)
      process.exit(1)
    },
  )
}
