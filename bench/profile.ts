/**
 * `node --import tsx bench/profile.ts <system> <read|write> [seconds]`: loads one system's server
 * under `node --cpu-prof` and prints where its CPU time goes: the functions with the most self
 * time, the most inclusive time, and totals per file or package. Used when a target is missed.
 * The raw profile is kept in bench/.tmp/profiles/ (open it in Chrome DevTools).
 */
import { mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildTree } from './build.js'
import { startServer } from './children.js'
import { removeOnExit, runMain } from './cleanup.js'
import { createSessionPool } from './http.js'
import { runLoad, type Kind } from './load.js'
import { startBenchPostgres } from './postgres.js'
import { startBenchRedis } from './redis.js'
import { needsPostgres, needsRedis, systemById } from './systems.js'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  children?: number[]
}
interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const ROOT = join(__dirname, '..')

async function main(): Promise<void> {
  const [id = 'concord-memory', kind = 'read', seconds = '10'] = process.argv.slice(2)
  const system = systemById(id)
  const outDir = join(__dirname, '.tmp', 'profiles')
  const scratch = join(__dirname, '.tmp', `profile-${process.pid}`)
  mkdirSync(scratch, { recursive: true })
  removeOnExit(scratch)
  const redis = needsRedis(system) ? await startBenchRedis() : undefined
  const postgres = needsPostgres(system) ? await startBenchPostgres() : undefined

  const server = await startServer(
    buildTree(join(scratch, 'build')),
    {
      system: system.id,
      redisUrl: redis?.url,
      dir: system.needs === 'dir' ? join(scratch, 'store') : undefined,
      pgUrl: postgres?.url,
      pgSchema: postgres?.schema,
    },
    ['--cpu-prof', '--cpu-prof-dir', scratch],
  )
  const pool = await createSessionPool(server.url, 100)
  const warmup = await runLoad({
    url: server.url,
    kind: kind as Kind,
    pool,
    connections: 32,
    seconds: 2,
  }) // in the profile too
  const result = await runLoad({
    url: server.url,
    kind: kind as Kind,
    pool,
    connections: 32,
    seconds: Number(seconds),
  })
  await server.stop()

  const file = readdirSync(scratch).find((f) => f.endsWith('.cpuprofile'))
  if (!file) throw new Error('bench profile: the server wrote no .cpuprofile')
  mkdirSync(outDir, { recursive: true })
  const kept = join(outDir, `${id}-${kind}-${Date.now()}.cpuprofile`)
  renameSync(join(scratch, file), kept)
  console.log(
    `${id} ${kind}: ${Math.round(result.rps)} req/s under profiling; profile: ${relative(ROOT, kept)}\n`,
  )
  printProfile(
    JSON.parse(readFileSync(kept, 'utf8')) as CpuProfile,
    warmup.requests + result.requests + pool.length,
  )
}

/** `requests`: every request the server answered while profiled, to put CPU time per request. */
function printProfile(profile: CpuProfile, requests: number): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfUs = new Map<number, number>()
  // timeDeltas[i] is the time before sample i; it is spent in the node sampled at i.
  profile.samples.forEach((nodeId, i) =>
    selfUs.set(nodeId, (selfUs.get(nodeId) ?? 0) + (profile.timeDeltas[i] ?? 0)),
  )
  const idle = [...byId.values()]
    .filter((n) => n.callFrame.functionName === '(idle)')
    .reduce((s, n) => s + (selfUs.get(n.id) ?? 0), 0)
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0)
  const busy = total - idle
  console.log(
    `busy ${(busy / 1000).toFixed(0)} ms of ${(total / 1000).toFixed(0)} ms sampled, ${(busy / requests).toFixed(0)} µs per request; ` +
      'below: % of busy time, and µs per request\n',
  )

  const selfByKey = new Map<string, number>()
  const selfByArea = new Map<string, number>()
  for (const node of byId.values()) {
    const us = selfUs.get(node.id) ?? 0
    if (node.callFrame.functionName === '(idle)' || us === 0) continue
    selfByKey.set(keyOf(node), (selfByKey.get(keyOf(node)) ?? 0) + us)
    selfByArea.set(areaOf(node), (selfByArea.get(areaOf(node)) ?? 0) + us)
  }

  // Inclusive time per function, counted once per stack even when it recurses.
  const inclusive = new Map<string, number>()
  const onStack = new Map<string, number>()
  const subtree = (node: ProfileNode): number => {
    const key = keyOf(node)
    onStack.set(key, (onStack.get(key) ?? 0) + 1)
    let us = selfUs.get(node.id) ?? 0
    for (const child of node.children ?? []) us += subtree(byId.get(child)!)
    onStack.set(key, onStack.get(key)! - 1)
    if (onStack.get(key) === 0) inclusive.set(key, (inclusive.get(key) ?? 0) + us)
    return us
  }
  subtree(profile.nodes[0]!)

  const pct = (us: number) =>
    `${((us / busy) * 100).toFixed(1).padStart(5)}% ${(us / requests).toFixed(1).padStart(6)} µs`
  const top = (map: Map<string, number>, n: number) =>
    [...map].sort((a, b) => b[1] - a[1]).slice(0, n)
  console.log('Self time by file or package:')
  for (const [area, us] of top(selfByArea, 15)) console.log(`  ${pct(us)}  ${area}`)
  console.log('\nSelf time by function:')
  for (const [key, us] of top(selfByKey, 30)) console.log(`  ${pct(us)}  ${key}`)
  console.log('\nInclusive time, functions in lib/ and stores/:')
  const ours = new Map([...inclusive].filter(([key]) => /\s(lib|stores)\//.test(key)))
  for (const [key, us] of top(ours, 25)) console.log(`  ${pct(us)}  ${key}`)
}

/** `name file:line`, with compiled concord code mapped back to its TypeScript line. */
function keyOf(node: ProfileNode): string {
  const { functionName, url } = node.callFrame
  const where = locate(node)
  return `${functionName || '(anonymous)'} ${url ? `${where.file}:${where.line}` : ''}`.trim()
}

function areaOf(node: ProfileNode): string {
  const url = locate(node).file
  if (!url)
    return node.callFrame.functionName.startsWith('(') ? node.callFrame.functionName : '(native)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg) return `node_modules/${pkg[1]}`
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/')
  return url
}

const BUILD_MARK = '/build/'
const sourceMaps = new Map<string, SourceMap | null>()

function locate(node: ProfileNode): { file: string; line: number } {
  const { url, lineNumber, columnNumber } = node.callFrame
  const path = url.startsWith('file://') ? fileURLToPath(url) : url
  if (!sourceMaps.has(path)) sourceMaps.set(path, inlineSourceMap(path))
  const entry = sourceMaps.get(path)?.findEntry(lineNumber, columnNumber)
  if (entry && 'originalSource' in entry) {
    // The map names the source relative to the compiled file, whose place mirrors the repo's.
    const compiled = path.slice(path.indexOf(BUILD_MARK) + BUILD_MARK.length)
    return { file: join(dirname(compiled), entry.originalSource), line: entry.originalLine + 1 }
  }
  return { file: shortUrl(url), line: lineNumber + 1 }
}

/** The inline source map bench/build.ts wrote into a compiled file, if `path` is one. */
function inlineSourceMap(path: string): SourceMap | null {
  if (!path.endsWith('.js') || !path.includes(BUILD_MARK)) return null
  try {
    const match = /\/\/# sourceMappingURL=data:application\/json;base64,(\S+)\s*$/.exec(
      readFileSync(path, 'utf8'),
    )
    return match
      ? new SourceMap(JSON.parse(Buffer.from(match[1]!, 'base64').toString('utf8')))
      : null
  } catch {
    return null
  }
}

function shortUrl(url: string): string {
  const path = url.startsWith('file://') ? fileURLToPath(url) : url
  return path.startsWith(ROOT) ? relative(ROOT, path) : path
}

runMain(main)
