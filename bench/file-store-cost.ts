/**
 * What one write costs the FileStore: a load with a touch, then a save of one changed key, as the
 * middleware does for a request that changes its session. Reports CPU per write (user + sys of
 * this process, every thread) and, under strace, the file system calls per write by name.
 *
 *   node --import tsx bench/file-store-cost.ts [--store=entries/file.ts] [--sessions=200] [--writes=3000] [--fsync=false] [--strace]
 *
 * --store picks the FileStore module to measure, so two trees can be compared with one script.
 * --fsync=false leaves out the fsync, whose kernel time otherwise dominates the CPU figure.
 * Workloads: "pool" spreads writes over --sessions sessions (real traffic); "hot" writes one
 * session, each write right after the previous one.
 */
import { spawnSync } from 'node:child_process'
import { accessSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { randomUUID } from 'node:crypto'

const { values } = parseArgs({
  options: {
    store: { type: 'string', default: 'entries/file.ts' },
    sessions: { type: 'string', default: '200' },
    writes: { type: 'string', default: '3000' },
    strace: { type: 'boolean', default: false },
    fsync: { type: 'string', default: 'true' },
    child: { type: 'string' },
  },
})

/** File system calls, by the names strace gives them; event-loop wake-ups are not counted. */
const FS_CALLS = [
  'openat',
  'close',
  'read',
  'pread64',
  'write',
  'pwrite64',
  'fstat',
  'newfstatat',
  'statx',
  'lstat',
  'utimensat',
  'futimesat',
  'fsync',
  'fdatasync',
  'rename',
  'renameat',
  'renameat2',
  'symlink',
  'symlinkat',
  'unlink',
  'unlinkat',
  'readlink',
  'readlinkat',
  'mkdir',
  'mkdirat',
  'link',
  'linkat',
  'getdents64',
]

interface Workload {
  name: 'pool' | 'hot'
  sessions: number
}

async function measure(
  workload: Workload,
  writes: number,
  mark: (label: string) => void,
): Promise<{ cpuMicros: number; userMicros: number }> {
  const { FileStore } = (await import(
    resolve(values.store!)
  )) as typeof import('../entries/file.js')
  const dir = mkdtempSync(join(tmpdir(), 'concord-file-cost-'))
  const store = new FileStore({ dir, fsync: values.fsync !== 'false' })
  try {
    const hour = 3_600_000
    const change = (
      set: Record<string, string>,
      expectedVersion: number | null,
      createdAt = Date.now(),
    ) => ({
      set,
      unset: [],
      cookie: {},
      createdAt,
      expiresAt: Date.now() + hour,
      idleTimeout: hour,
      userId: null,
      expectedVersion,
    })
    const ids = Array.from({ length: workload.sessions }, () => randomUUID())
    for (const id of ids)
      await store.save(id, change({ cart: JSON.stringify({ items: ['a', 'b'] }) }, null))
    await new Promise((r) => setTimeout(r, 200)) // the files settle, as sessions between requests do
    const write = async (i: number) => {
      const id = ids[i % ids.length]!
      const record = await store.load(id, { touchAt: Date.now() })
      if (!record) throw new Error('session vanished')
      const result = await store.save(
        id,
        change({ [`k${i % 8}`]: JSON.stringify(i) }, record.version, record.createdAt),
      )
      if (!result.ok) throw new Error(`save failed: ${JSON.stringify(result)}`)
    }
    for (let i = 0; i < Math.min(200, writes); i++) await write(i) // warm up
    mark(`start-${workload.name}`)
    const before = process.cpuUsage()
    for (let i = 0; i < writes; i++) await write(i)
    const used = process.cpuUsage(before)
    mark(`end-${workload.name}`)
    return { cpuMicros: (used.user + used.system) / writes, userMicros: used.user / writes }
  } finally {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

const WORKLOADS: Workload[] = [
  { name: 'pool', sessions: Number(values.sessions) },
  { name: 'hot', sessions: 1 },
]

async function child(markDir: string): Promise<void> {
  // A failed access() of a path naming the phase: it shows in the trace, and costs nothing else.
  const mark = (label: string) => {
    try {
      accessSync(join(markDir, `MARK-${label}`))
    } catch {
      // expected: the path does not exist
    }
  }
  const out: Record<string, { cpuMicros: number; userMicros: number }> = {}
  for (const w of WORKLOADS) out[w.name] = await measure(w, Number(values.writes), mark)
  process.stdout.write(JSON.stringify(out) + '\n')
}

function countCalls(trace: string, workload: string, writes: number): Record<string, number> {
  const lines = readFileSync(trace, 'utf8').split('\n')
  const from = lines.findIndex((l) => l.includes(`MARK-start-${workload}`))
  const to = lines.findIndex((l) => l.includes(`MARK-end-${workload}`))
  const counts: Record<string, number> = {}
  for (const line of lines.slice(from + 1, to)) {
    const m = /^\d+ +(\w+)\((\d+)?/.exec(line)
    if (!m || !FS_CALLS.includes(m[1]!)) continue
    // libuv wakes the event loop with 8-byte reads and writes on an eventfd: not file system work.
    if (
      (m[1] === 'read' || m[1] === 'write') &&
      /"\\\d\\0\\0\\0\\0\\0\\0\\0", \d+\) += 8$/.test(line)
    )
      continue
    counts[m[1]!] = (counts[m[1]!] ?? 0) + 1
  }
  const perWrite: Record<string, number> = {}
  let total = 0
  for (const [name, n] of Object.entries(counts).sort((a, b) => b[1] - a[1])) {
    perWrite[name] = Math.round((n / writes) * 100) / 100
    total += n
  }
  perWrite['total'] = Math.round((total / writes) * 100) / 100
  return perWrite
}

async function main(): Promise<void> {
  if (values.child !== undefined) return child(values.child)
  const markDir = mkdtempSync(join(tmpdir(), 'concord-file-cost-mark-'))
  const args = [
    '--import',
    'tsx',
    __filename,
    `--child=${markDir}`,
    `--store=${values.store}`,
    `--sessions=${values.sessions}`,
    `--writes=${values.writes}`,
    `--fsync=${values.fsync}`,
  ]
  try {
    const plain = spawnSync(process.execPath, args, { encoding: 'utf8' })
    if (plain.status !== 0) throw new Error(plain.stderr)
    const cpu = JSON.parse(plain.stdout) as Record<
      string,
      { cpuMicros: number; userMicros: number }
    >
    console.log(`store: ${values.store} (fsync ${values.fsync})`)
    for (const w of WORKLOADS) {
      const { cpuMicros, userMicros } = cpu[w.name]!
      console.log(
        `${w.name}: ${cpuMicros.toFixed(1)} µs CPU per write (${userMicros.toFixed(1)} user), load with touch + save, ${values.writes} writes`,
      )
    }
    if (!values.strace) return
    if (spawnSync('strace', ['-V']).status !== 0) {
      console.log('strace is not installed: no system call counts')
      return
    }
    const trace = join(markDir, 'trace.txt')
    const traced = spawnSync(
      'strace',
      [
        '-f',
        '-qq',
        '-o',
        trace,
        '-e',
        `trace=${[...FS_CALLS, 'access', 'faccessat', 'faccessat2'].join(',')}`,
        process.execPath,
        ...args,
      ],
      {
        encoding: 'utf8',
      },
    )
    if (traced.status !== 0) throw new Error(traced.stderr)
    for (const w of WORKLOADS)
      console.log(
        `${w.name}: file system calls per write ${JSON.stringify(countCalls(trace, w.name, Number(values.writes)))}`,
      )
  } finally {
    rmSync(markDir, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
