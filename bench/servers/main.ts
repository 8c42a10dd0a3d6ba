/**
 * Entry of one server child: `fork('bench/servers/main.ts', [JSON config])`. Serves the cart
 * app on 127.0.0.1 at a free port, reports the port over IPC, and exits on 'stop' (cleanly, so
 * `--cpu-prof` gets to write its profile) or as soon as the parent goes away.
 */
import type { AddressInfo } from 'node:net'
import { GCProfiler } from 'node:v8'
import { keepAliveLongerThanClient } from '../http.js'
import { cartApp } from './cart-app.js'
import { buildMiddleware, type ServerConfig } from './middleware.js'

/** The garbage collections over an allocation window: young-generation and full, and their pauses. */
export interface GcCounts {
  young: number
  full: number
  pauseMs: number
}

export type ToServer = { type: 'stop' } | { type: 'alloc-start' } | { type: 'alloc-stop' }
export type FromServer =
  | { type: 'ready'; port: number }
  | { type: 'failed'; message: string }
  | { type: 'alloc-started' }
  | { type: 'alloc'; bytes: number; gc: GcCounts }

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as ServerConfig
  const built = await buildMiddleware(config)
  const server = cartApp(built.middleware).listen(0, '127.0.0.1')
  // Idle connections outlive the bench client's (see http.ts), so the client always closes first.
  keepAliveLongerThanClient(server)
  await new Promise<void>((resolve, reject) =>
    server.once('listening', resolve).once('error', reject),
  )

  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    server.closeAllConnections()
    server.close()
    await built.close().catch(() => {})
    process.exit(0)
  }
  // Bytes allocated over a window: the heap's growth plus what each GC in it freed.
  let profiler: GCProfiler | undefined
  let heapAtStart = 0
  process.on('message', (message: ToServer) => {
    if (message.type === 'stop') void stop()
    else if (message.type === 'alloc-start') {
      profiler = new GCProfiler()
      profiler.start()
      heapAtStart = process.memoryUsage().heapUsed
      send({ type: 'alloc-started' })
    } else if (message.type === 'alloc-stop' && profiler) {
      const heapAtEnd = process.memoryUsage().heapUsed
      const stats = profiler.stop()?.statistics ?? []
      profiler = undefined
      let freed = 0
      const gc: GcCounts = { young: 0, full: 0, pauseMs: 0 }
      for (const { beforeGC, afterGC, gcType, cost } of stats) {
        freed += beforeGC.heapStatistics.usedHeapSize - afterGC.heapStatistics.usedHeapSize
        if (gcType === 'MarkSweepCompact') gc.full++
        else if (gcType === 'Scavenge' || gcType === 'MinorMarkCompact') gc.young++
        gc.pauseMs += cost / 1000
      }
      send({ type: 'alloc', bytes: heapAtEnd - heapAtStart + freed, gc })
    }
  })
  process.on('disconnect', () => void stop()) // the orchestrator died: never outlive it
  send({ type: 'ready', port: (server.address() as AddressInfo).port })
}

function send(message: FromServer): void {
  process.send?.(message)
}

main().catch((err: Error) => {
  send({ type: 'failed', message: err.stack ?? err.message })
  process.exit(1)
})
