import type { Response } from 'supertest'

/** The Set-Cookie values of a response, as an array. */
export function setCookies(res: Response): string[] {
  const header = res.headers['set-cookie'] as string[] | string | undefined
  return header === undefined ? [] : Array.isArray(header) ? header : [header]
}

/** The one Set-Cookie value for `name`, or undefined. */
export function sessionCookie(res: Response, name = 'connect.sid'): string | undefined {
  return setCookies(res).find((c) => c.startsWith(`${name}=`))
}

/** `name=value` from a Set-Cookie value, ready for a Cookie header. */
export function cookiePair(setCookie: string | undefined): string {
  if (!setCookie) throw new Error('expected a Set-Cookie header')
  return setCookie.split(';')[0]!
}

export function attribute(setCookie: string, name: string): string | true | undefined {
  for (const part of setCookie.split(';').slice(1)) {
    const [key, ...value] = part.trim().split('=')
    if (key!.toLowerCase() === name.toLowerCase()) return value.length ? value.join('=') : true
  }
  return undefined
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
