/**
 * `npm start`: runs the shop on the store the environment picks (see store-from-env.ts).
 *   PORT (default 3000), SESSION_SECRET, SESSION_STORE_URL, SESSION_HOT_STORE_URL,
 *   or SESSION_STORE, SESSION_DIR, REDIS_URL, REDIS_PREFIX;
 *   SESSION_RENEW_EVERY, SESSION_RENEW_AFTER_REQUESTS, SESSION_RENEW_GRACE, SESSION_MAX_DEVICES
 *   (see lifecycle.ts)
 */
import type { Server } from 'node:http'
import { createApp } from './app.js'
import { lifecycleFromEnv } from './lifecycle.js'
import { openStoreFromEnv } from './store-from-env.js'

// For trying the shop on your machine only. Anyone who knows it can forge session cookies.
const DEV_SECRET = 'concord-shop-dev-secret-NOT-FOR-PRODUCTION'

async function main(): Promise<void> {
  const port = Number(process.env['PORT'] || 3000)
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`PORT must be a port number, got ${JSON.stringify(process.env['PORT'])}`)

  let secret = process.env['SESSION_SECRET']
  if (!secret) {
    console.warn(
      'Warning: SESSION_SECRET is not set; using the built-in development secret. Set SESSION_SECRET for anything but a local demo.',
    )
    secret = DEV_SECRET
  }

  const lifecycle = lifecycleFromEnv(process.env) // before the store: a typo opens nothing
  const opened = await openStoreFromEnv(process.env)
  const app = createApp({
    store: opened.store,
    secret,
    storeName: opened.kind,
    auditLog: (line) => console.log(line),
    renew: lifecycle.renew,
    maxDevices: lifecycle.maxDevices,
  })
  const server: Server = app.listen(port)
  server.once('error', (err: NodeJS.ErrnoException) => {
    console.error(
      err.code === 'EADDRINUSE'
        ? `Port ${port} is in use; set PORT to another one.`
        : `Cannot listen on ${port}: ${err.message}`,
    )
    void opened.close().finally(() => process.exit(1))
  })
  server.once('listening', () => {
    const address = server.address()
    const actual = typeof address === 'object' && address ? address.port : port
    console.log(`Cart app on http://localhost:${actual} (store: ${opened.kind})`)
    console.log(`Sessions: ${opened.detail}`)
  })

  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    console.log(`${signal}: shutting down`)
    // Give open requests a moment; a browser's idle keep-alive connections are closed at once.
    const force = setTimeout(() => {
      console.error('Shutdown took over 5 s; exiting')
      process.exit(1)
    }, 5000)
    force.unref()
    server.close(() => {
      opened.close().then(
        () => process.exit(0),
        (err: unknown) => {
          console.error('Closing the session store failed:', err)
          process.exit(1)
        },
      )
    })
    server.closeIdleConnections()
  }
  process.once('SIGTERM', () => stop('SIGTERM'))
  process.once('SIGINT', () => stop('SIGINT'))
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err)
  process.exit(1)
})
