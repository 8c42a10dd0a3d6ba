/** Small HTTP helpers the compat tests share. */
import type { Express, Request } from 'express'
import type { Response } from 'supertest'

/** The `name=value` of the first Set-Cookie, to send back as a Cookie header. */
export function cookieOf(res: Response): string {
  return ([] as string[]).concat(res.headers['set-cookie'] ?? [])[0]!.split(';')[0]!
}

/** req.session as a plain record: the compat tests do not augment SessionData. */
export function sess(req: Request): Record<string, any> {
  return req.session as unknown as Record<string, any>
}

/** Mounts `session` and the view counter at GET /views, answering `{ views, id }`. */
export function viewsApp(app: Express, session: unknown): Express {
  app.use(session as never)
  app.get('/views', (req, res) => {
    sess(req).views = (sess(req).views ?? 0) + 1
    res.json({ views: sess(req).views, id: req.sessionID })
  })
  return app
}
