/**
 * Plain request and response objects, to drive a session middleware in process (no sockets, no
 * Express): just what the middlewares and a handler call. The measured process then spends its
 * CPU on the middleware, its store client and the handler only.
 */

/** A connect-style middleware, as concord-session and the drop-in are. */
export type Mw = (req: any, res: any, next: (err?: unknown) => void) => void

/** What runs after the middleware; it ends the response. */
export type Handler = (req: any, res: FakeRes) => void | Promise<void>

/** The response: records the status, the headers and the body it was ended with. */
export class FakeRes {
  statusCode = 200
  headers: Record<string, unknown> = {}
  headersSent = false
  body: unknown
  constructor(readonly done: (res: FakeRes) => void) {}
  getHeader(name: string) {
    return this.headers[name.toLowerCase()]
  }
  setHeader(name: string, value: unknown) {
    this.headers[name.toLowerCase()] = value
  }
  writeHead(code: number) {
    this.statusCode = code
    this.headersSent = true
    return this
  }
  _implicitHeader() {
    this.writeHead(this.statusCode)
  }
  write(_chunk?: unknown) {
    return true
  }
  end(body?: unknown) {
    // As Node's response does: headers (and so the Set-Cookie a middleware adds) go out first.
    if (!this.headersSent) this._implicitHeader()
    this.body = body
    this.done(this)
    return this
  }
}

const EXPRESS_REQUEST = Object.create(Object.prototype) as object
const EXPRESS_RESPONSE = Object.create(FakeRes.prototype) as object

/**
 * Gives req and res a new prototype, as Express does for every request (`app.request`,
 * `app.response`). V8 keeps no hidden-class transitions for objects whose prototype was swapped,
 * so each property a middleware then adds builds a new hidden class: without this, the fakes
 * would hide that cost, which real Express apps pay.
 */
export function asExpressDoes<Req extends object>(req: Req, res: FakeRes): void {
  Object.setPrototypeOf(req, EXPRESS_REQUEST)
  Object.setPrototypeOf(res, EXPRESS_RESPONSE)
}

/**
 * One request through `mw` then `handler`. Rejects with what the middleware or the handler
 * failed with, so a broken store stops the measurement instead of being timed.
 *
 * @example
 * ```ts
 * const res = await drive(mw, (req, res) => res.end(String(req.session.id)), '/cart', cookie)
 * ```
 */
export function drive(
  mw: Mw,
  handler: Handler,
  path: string,
  cookie?: string,
  method = 'GET',
): Promise<FakeRes> {
  return new Promise((resolve, reject) => {
    const req = {
      headers: cookie ? { cookie } : {},
      url: path,
      originalUrl: path,
      method,
      socket: {},
    }
    const res = new FakeRes(resolve)
    asExpressDoes(req, res)
    mw(req, res, (err) => {
      if (err) return reject(err as Error)
      Promise.resolve()
        .then(() => handler(req, res))
        .catch(reject)
    })
  })
}

/**
 * `name=value` of the response's session cookie; throws when there is none, since every
 * measurement needs a stored session to work on.
 *
 * @example
 * ```ts
 * const cookie = sessionCookie(await drive(mw, login, '/login', undefined, 'POST'))
 * ```
 */
export function sessionCookie(res: FakeRes): string {
  const header = res.headers['set-cookie']
  const first = Array.isArray(header) ? header[0] : header
  if (typeof first !== 'string' || !first.includes('='))
    throw new Error(`bench: the login response set no session cookie (status ${res.statusCode})`)
  return first.split(';')[0]!
}
