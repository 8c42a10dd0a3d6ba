/**
 * A TCP proxy that makes a local Redis behave like one across a network: every chunk waits
 * `delayMs` in each direction. It also counts round trips: a round trip is a burst of bytes
 * from the client that follows a reply (or opens the connection). A pipelined batch is one
 * round trip, which is what it costs on a real network.
 */
import { createServer, connect, type AddressInfo, type Socket } from 'node:net'
import { onCleanup } from './cleanup.js'

export interface DelayProxy {
  port: number
  /** Round trips seen so far, across all connections. */
  roundTrips(): number
  close(): Promise<void>
}

export async function startDelayProxy(targetPort: number, delayMs: number): Promise<DelayProxy> {
  let roundTrips = 0
  const sockets = new Set<Socket>()

  // Timers of equal delay fire in the order they were set, so each direction keeps its byte order.
  const later = (fn: () => void) => (delayMs > 0 ? setTimeout(fn, delayMs) : fn())

  // Half-open sockets let an end (Redis closing after QUIT) travel after the bytes before it.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect({ port: targetPort, host: '127.0.0.1', allowHalfOpen: true })
    let clientSpokeLast = false
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.setNoDelay(true)
      socket.on('close', () => sockets.delete(socket))
      socket.on('error', () => {
        client.destroy()
        upstream.destroy()
      })
    }

    client.on('data', (chunk) => {
      if (!clientSpokeLast) roundTrips++
      clientSpokeLast = true
      later(() => upstream.write(chunk))
    })
    upstream.on('data', (chunk) => {
      clientSpokeLast = false
      later(() => client.write(chunk))
    })
    client.on('end', () => later(() => upstream.end()))
    upstream.on('end', () => later(() => client.end()))
  })

  await new Promise<void>((resolve, reject) =>
    server.listen(0, '127.0.0.1', resolve).once('error', reject),
  )
  const close = onCleanup(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { port: (server.address() as AddressInfo).port, roundTrips: () => roundTrips, close }
}
