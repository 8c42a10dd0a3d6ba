import type { AddressInfo } from 'node:net'
import type { Express, NextFunction, Request, Response } from 'express'

/**
 * Ends the app's error chain: a failed request answers with its error's status (500 when it
 * has none) and `{ error: message }`, which the fault tests read.
 *
 * @example
 * ```ts
 * jsonErrors(app)
 * ```
 */
export function jsonErrors(app: Express): void {
  app.use(
    (
      err: { status?: number; message: string },
      _req: Request,
      res: Response,
      _next: NextFunction,
    ) => {
      res.status(err.status ?? 500).json({ error: err.message })
    },
  )
}

/** An app listening on a free port of 127.0.0.1. */
export interface Served {
  /** `http://127.0.0.1:<port>`, without a trailing slash. */
  base: string
  close(): Promise<void>
}

/**
 * Starts `app` on a free port of 127.0.0.1, once it listens.
 *
 * @example
 * ```ts
 * const { base, close } = await serve(app)
 * try { await fetch(`${base}/cart`) } finally { await close() }
 * ```
 */
export async function serve(app: Express): Promise<Served> {
  const http = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => http.once('listening', resolve))
  return {
    base: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => http.close(() => resolve())),
  }
}
