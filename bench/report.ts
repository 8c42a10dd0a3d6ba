/**
 * The report: markdown tables (printed, and written to results.md) and a hand-written SVG bar
 * chart of median req/s.
 */
import { renderLifecycle } from './lifecycle-report.js'
import type { Kind } from './load.js'
import type { LostUpdates } from './probes.js'
import type { Results, Summary } from './results.js'
import { systemById } from './systems.js'
import { checkTargets } from './targets.js'

export function renderMarkdown(results: Results, chartFile: string): string {
  const { config: c, machine: m } = results
  const out: string[] = []
  out.push('# concord-session benchmarks', '')
  out.push(
    `${c.quick ? '**Quick run** (fewer, shorter rounds: indicative only). ' : ''}` +
      `Run ${m.date.slice(0, 16).replace('T', ' ')} UTC of commit ${m.commit}, on ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, ${m.os}. ` +
      `1-minute load average ${m.loadBefore[0]} before, ${m.loadAfter[0]} after` +
      (m.loadBefore[0]! > m.cores * 0.5
        ? ' (other work shared the machine: absolute numbers are lower than on an idle one, and rounds vary)'
        : '') +
      '.',
    '',
    `Each system serves the same Express 5 cart app from its own child process (\`GET /cart\` reads, ` +
      `\`POST /cart/add/:item\` writes). autocannon, ${c.connections} connections, ${c.rounds} rounds × ${c.seconds} s per ` +
      `system and request type after a ${c.warmupSeconds} s warm-up, in a new random order every round (systems compared with ` +
      'each other run back to back); each load starts once the machine was under 5% busy for 200 ms ' +
      '(at most 2 s later), so what the load before it left running does not count against it. ' +
      'req/s is the median over rounds, with the slowest and fastest round in small print; ' +
      "p50 and p99 are medians of the rounds' percentiles; the ratios are medians of per-round ratios. " +
      `Every request carries one of ${c.poolSize} session cookies made beforehand (a user and a 5-item cart). ` +
      'Sessions use a one-day cookie, `resave: false`, `saveUninitialized: false` on every system.',
    '',
  )
  out.push('## Server CPU per request (the primary figure)', '')
  out.push(
    "The server process's user+sys CPU time (from `/proc/<pid>/stat`) over a load run, divided by the requests it answered; " +
      'in brackets, the overhead over bare Express measured in the same round (median of per-round differences). ' +
      `**pool**: requests spread over ${c.poolSize} sessions, ${c.connections} connections. ` +
      `**hot**: every request on one session, ${c.hotConnections} connections (the worst case for contention). ` +
      'CPU is far steadier than req/s on a shared machine, where the load generator competes with the server for the cores.',
    '',
  )
  out.push(cpuTable(results), '')
  out.push('## Allocation per request', '')
  out.push(allocTable(results), '')
  out.push(
    "Bytes the server's JS heap allocated per request: heap growth over the run plus what each GC in it freed (`v8.GCProfiler`); " +
      'in brackets, over bare Express in the same round.',
    '',
  )
  out.push('## Throughput and latency (pool)', '')
  out.push(throughputTable(results), '')

  if (Object.keys(results.remote).length > 0) {
    out.push(
      `## Remote Redis (a proxy adds ${c.proxyDelayMs} ms each way; one connection, one request at a time)`,
      '',
    )
    out.push(remoteTable(results), '')
    out.push(
      "Round trips are counted by the proxy (a client burst that follows a reply); commands by the bench's own " +
        'redis-server (`INFO commandstats`), which also counts the calls a Lua script makes. Measured over ' +
        `${c.roundTripRequests} sequential requests per type.`,
      '',
    )
  }

  out.push('## Correctness', '')
  out.push(correctnessTable(results), '')

  if (results.memory.length > 0) {
    out.push(`## Memory per 100k idle sessions`, '')
    out.push(memoryTable(results), '')
  }

  if (results.lifecycle) out.push(...renderLifecycle(results.lifecycle))

  out.push('## Targets (reported, not asserted)', '')
  out.push(
    'A CPU overhead target is judged on medians over rounds; "rounds" gives the lowest and ' +
      'highest of the same ratio taken round by round. When the bound falls inside that range, ' +
      "the verdict is within this run's noise.",
    '',
  )
  out.push('| Target | Measured | Met |', '|---|---|---|')
  for (const t of checkTargets(results))
    out.push(
      `| ${t.target} | ${t.measured} | ${t.met === undefined ? 'n/a' : t.met ? 'yes' : '**no**'} |`,
    )
  out.push('', `![Server CPU overhead per request over bare Express](${chartFile})`, '')
  out.push(
    `Run with \`npm run bench\`${c.quick ? ' (this was `--quick`)' : ''}; it took ${Math.round(results.durationSeconds)} s. Method: docs/benchmarks.md.`,
    '',
  )
  return out.join('\n')
}

const CASES = [
  ['read', 'pool'],
  ['write', 'pool'],
  ['read', 'hot'],
  ['write', 'hot'],
] as const

function summaryOf(results: Results, kind: Kind, workload: 'pool' | 'hot') {
  return (id: keyof Results['load']) =>
    (workload === 'hot' ? results.hot : results.load)[id]?.[kind]
}

function cpuTable(results: Results): string {
  return caseTable(results, 'µs', (s) =>
    s?.cpuUs === undefined
      ? 'n/a'
      : `${s.cpuUs.toFixed(0)}${s.cpuOverBareUs !== undefined ? ` (${signed(s.cpuOverBareUs)})` : ''}`,
  )
}

function allocTable(results: Results): string {
  return caseTable(results, 'B', (s) =>
    s?.allocBytes === undefined
      ? 'n/a'
      : `${int(s.allocBytes)}${s.allocOverBare !== undefined ? ` (${signed(s.allocOverBare)})` : ''}`,
  )
}

/** One row per system, one column per request type and workload. */
function caseTable(
  results: Results,
  unit: string,
  cell: (s: Summary | undefined) => string,
): string {
  const rows = [
    `| System | Read, pool ${unit} | Write, pool ${unit} | Read, hot ${unit} | Write, hot ${unit} |`,
    '|---|--:|--:|--:|--:|',
  ]
  for (const id of results.systems) {
    const system = systemById(id)
    const cells = [system.family === 'concord' ? `**${system.label}**` : system.label]
    for (const [kind, workload] of CASES) cells.push(cell(summaryOf(results, kind, workload)(id)))
    rows.push(`| ${cells.join(' | ')} |`)
  }
  return rows.join('\n')
}

function throughputTable(results: Results): string {
  const rows = [
    '| System | Read req/s | p50 ms | p99 ms | × bare | × express-session | Write req/s | p50 ms | p99 ms | × bare | × express-session |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ]
  for (const id of results.systems) {
    const system = systemById(id)
    const cells = [system.family === 'concord' ? `**${system.label}**` : system.label]
    for (const kind of ['read', 'write'] as const) {
      const s = results.load[id]?.[kind]
      cells.push(
        s
          ? `${int(s.rps)} <sub>${int(s.rpsMin)}–${int(s.rpsMax)}</sub>${s.failures ? ` (${s.failures} failed)` : ''}`
          : 'n/a',
        s ? ms(s.p50) : 'n/a',
        s ? ms(s.p99) : 'n/a',
        s?.vsBare !== undefined ? times(s.vsBare) : '',
        s?.vsPeer !== undefined ? times(s.vsPeer) : '',
      )
    }
    rows.push(`| ${cells.join(' | ')} |`)
  }
  return rows.join('\n')
}

function remoteTable(results: Results): string {
  const rows = [
    '| System | Read p50 ms | Write p50 ms | Round trips / read | Round trips / write | Redis commands / read | Redis commands / write |',
    '|---|--:|--:|--:|--:|---|---|',
  ]
  for (const id of ['concord-redis', 'es-connect-redis'] as const) {
    const r = results.remote[id]
    if (!r) continue
    const commands = (kind: Kind) =>
      Object.entries(r[kind]?.commands ?? {})
        .map(([name, n]) => `${name} ${n}`)
        .join(', ')
    rows.push(
      `| ${systemById(id).label} | ${r.read ? ms(r.read.p50) : 'n/a'} | ${r.write ? ms(r.write.p50) : 'n/a'} | ` +
        `${r.read?.roundTrips ?? 'n/a'} | ${r.write?.roundTrips ?? 'n/a'} | ${commands('read')} | ${commands('write')} |`,
    )
  }
  return rows.join('\n')
}

function correctnessTable(results: Results): string {
  const { lostUpdateRequests: n, resurrectionTrials: trials } = results.config
  const rows = [
    `| System | Lost updates: ${n} concurrent adds of distinct items to an existing cart | … to a session with no cart yet | Resurrections: logout racing a slow write (${trials} trials) |`,
    '|---|--:|--:|--:|',
  ]
  const lostCell = (lost: LostUpdates | undefined) =>
    lost
      ? `${lost.sent - lost.survived} of ${lost.sent}${lost.failed ? ` (${lost.failed} requests failed)` : ''}`
      : 'n/a'
  for (const id of results.systems) {
    const lost = results.lostUpdates[id]
    const back = results.resurrection[id]
    if (!lost && !back) continue
    rows.push(
      `| ${systemById(id).label} | ${lostCell(lost?.existingCart)} | ${lostCell(lost?.newCart)} | ${back ? `${back.resurrected} of ${back.trials}` : 'n/a'} |`,
    )
  }
  return rows.join('\n')
}

function memoryTable(results: Results): string {
  const rows = [
    '| Store | MiB per 100k sessions | Bytes per session | Sessions measured |',
    '|---|--:|--:|--:|',
  ]
  for (const m of results.memory) {
    const perSession = m.heapDeltaBytes / m.sessions
    rows.push(
      `| ${systemById(m.store).label} | ${((perSession * 100_000) / 2 ** 20).toFixed(1)} | ${int(perSession)} | ${int(m.sessions)} |`,
    )
  }
  rows.push(
    '',
    "heapUsed after a full GC, before and after filling the store, in a fresh process per store; the data is the cart app's (a user and a 5-item cart).",
  )
  return rows.join('\n')
}

/** Horizontal grouped bars: median CPU overhead over bare Express per read and per write, for each system. */
export function renderSvg(results: Results): string {
  const rows = results.systems.filter((id) => id !== 'bare' && results.load[id])
  const value = (id: (typeof rows)[number], kind: Kind) => results.load[id]?.[kind]?.cpuOverBareUs
  const label = 300
  const barMax = 480
  const barH = 14
  const rowH = barH * 2 + 14
  const top = 56
  const height = top + rows.length * rowH + 30
  const width = label + barMax + 110
  const max = Math.max(
    1,
    ...rows.flatMap((id) => (['read', 'write'] as const).map((k) => value(id, k) ?? 0)),
  )
  const step = niceStep(max / 5)
  const x = (v: number) => label + (v / (Math.ceil(max / step) * step)) * barMax
  const colors: Record<Kind, string> = { read: '#4c78a8', write: '#f58518' }

  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">Server CPU per request over bare Express, µs, ${results.config.poolSize} sessions (lower is better)</text>`,
    `<text x="10" y="38" fill="#555">${esc(`${results.machine.cpu}, ${results.machine.cores} cores, Node ${results.machine.node}, ${results.machine.date.slice(0, 10)}${results.config.quick ? ', quick run' : ''}`)}</text>`,
  ]
  for (let v = 0; v <= max + step / 2; v += step) {
    parts.push(
      `<line x1="${x(v)}" y1="${top - 6}" x2="${x(v)}" y2="${height - 24}" stroke="#ddd"/>`,
    )
    parts.push(
      `<text x="${x(v)}" y="${height - 10}" text-anchor="middle" fill="#555">${int(v)}</text>`,
    )
  }
  rows.forEach((id, i) => {
    const system = systemById(id)
    const y = top + i * rowH
    parts.push(
      `<text x="${label - 8}" y="${y + barH + 4}" text-anchor="end"${system.family === 'concord' ? ' font-weight="bold"' : ''}>${esc(system.label)}</text>`,
    )
    ;(['read', 'write'] as const).forEach((kind, k) => {
      const rps = value(id, kind)
      if (rps === undefined) return
      const by = y + k * barH
      parts.push(
        `<rect x="${label}" y="${by}" width="${Math.max(1, x(Math.max(0, rps)) - label).toFixed(1)}" height="${barH - 2}" fill="${colors[kind]}"/>`,
      )
      parts.push(
        `<text x="${(x(Math.max(0, rps)) + 4).toFixed(1)}" y="${by + barH - 4}" fill="#333">${int(rps)}</text>`,
      )
    })
  })
  const legendX = width - 200
  ;(['read', 'write'] as const).forEach((kind, k) => {
    parts.push(
      `<rect x="${legendX + k * 95}" y="28" width="12" height="12" fill="${colors[kind]}"/>`,
    )
    parts.push(
      `<text x="${legendX + k * 95 + 16}" y="38">${kind === 'read' ? 'GET /cart' : 'POST /cart/add'}</text>`,
    )
  })
  parts.push('</svg>', '')
  return parts.join('\n')
}

/** 1, 2 or 5 times a power of ten, at least `raw`. */
function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(Math.max(raw, 1)))
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power
}

const int = (n: number) => Math.round(n).toLocaleString('en-US')
const signed = (n: number) => `${n < 0 ? '−' : '+'}${int(Math.abs(n))}`
const ms = (n: number) => n.toFixed(2)
const times = (n: number) => `${n.toFixed(2)}×`
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
