/**
 * Starts a real Redis Cluster for tests: N masters, no replicas, on free ports whose cluster
 * bus ports (port + 10000) are free too. Tears it all down afterwards.
 */
import { execFile } from 'node:child_process'
import { createServer } from 'node:net'
import { promisify } from 'node:util'
import { freePort, startRedisServer, type RedisProcess } from './redis-server'

const run = promisify(execFile)

export interface RedisClusterProcess {
  /** Seed nodes for `new Cluster(nodes)`. */
  nodes: { host: string; port: number }[]
  servers: RedisProcess[]
  stop(): Promise<void>
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.unref()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** A free port whose cluster bus port (port + 10000) is free as well. */
async function freeClusterPort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = await freePort()
    if (port + 10000 > 65535 || taken.has(port) || taken.has(port + 10000)) continue
    if (await canListen(port + 10000)) return port
  }
  throw new Error('No free port pair (port, port + 10000) for a cluster node')
}

async function clusterState(port: number): Promise<string> {
  const { stdout } = await run('redis-cli', [
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    'cluster',
    'info',
  ])
  return /cluster_state:(\w+)/.exec(stdout)?.[1] ?? 'unknown'
}

/** Starts `masters` cluster-enabled redis-servers, joins them with `redis-cli --cluster create`, and waits for state ok. */
export async function startRedisCluster(masters = 3): Promise<RedisClusterProcess> {
  const taken = new Set<number>()
  const ports: number[] = []
  for (let i = 0; i < masters; i++) {
    const port = await freeClusterPort(taken)
    taken.add(port).add(port + 10000)
    ports.push(port)
  }
  const servers: RedisProcess[] = []
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()))
  }
  try {
    for (const port of ports) {
      servers.push(
        await startRedisServer({
          port,
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-node-timeout',
            '5000',
          ],
        }),
      )
    }
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      {
        timeout: 30_000,
      },
    )
    const deadline = Date.now() + 30_000
    for (;;) {
      const states = await Promise.all(ports.map(clusterState))
      if (states.every((s) => s === 'ok')) break
      if (Date.now() > deadline)
        throw new Error(`Redis Cluster did not reach state ok: ${states.join(', ')}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  } catch (err) {
    await stop()
    throw err
  }
  return { nodes: ports.map((port) => ({ host: '127.0.0.1', port })), servers, stop }
}
