/**
 * Correctness probes, run against the same servers the load hits: what users of express-session
 * lose today (its issues #361 #606 #632 #957; connect-redis #75 #328), measured.
 */
import { send, sendOk } from './http.js'

export interface LostUpdates {
  sent: number
  /** Distinct items in the cart afterwards; `sent - survived` updates were lost. */
  survived: number
  /** Requests that failed outright (counted as lost, but worth knowing apart). */
  failed: number
}

/**
 * `n` concurrent requests on one session, each adding a distinct item. With `cartExists` the
 * session already holds a cart (the adds change items inside one key); without, the first adds
 * race to create the cart key itself.
 */
export async function probeLostUpdates(
  url: string,
  n: number,
  cartExists: boolean,
): Promise<LostUpdates> {
  const cookie = (await sendOk(url, 'POST', `/login?u=lost-updates${cartExists ? '&items=1' : ''}`))
    .cookies[0]
  // A request the connection dropped is a failed update, reported as such, not a failed run.
  const replies = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      send(url, 'POST', `/cart/add/probe-${i}`, cookie).catch(() => ({ status: 0 })),
    ),
  )
  const failed = replies.filter((r) => r.status < 200 || r.status > 299).length
  const cart = JSON.parse((await sendOk(url, 'GET', '/cart', cookie)).body) as {
    items: Record<string, number>
  }
  const survived = Object.keys(cart.items).filter((key) => key.startsWith('probe-')).length
  return { sent: n, survived, failed }
}

export interface Resurrections {
  trials: number
  /** Trials after which the logged-out session was back in the store. */
  resurrected: number
}

/**
 * A logout racing a slow write: the write loads the session, the logout destroys it, then the
 * write saves. If the old cookie then finds the user or the cart, the session came back.
 */
export async function probeResurrection(
  url: string,
  trials: number,
  slowMs: number,
): Promise<Resurrections> {
  let resurrected = 0
  for (let t = 0; t < trials; t++) {
    const cookie = (await sendOk(url, 'POST', `/login?u=resurrection-${t}`)).cookies[0]
    await sendOk(url, 'POST', '/cart/add/before-logout', cookie)
    const slow = send(url, 'POST', `/cart/add-slow/after-logout?ms=${slowMs}`, cookie)
    await sleep(slowMs / 3) // the slow request has loaded the session by now
    await sendOk(url, 'POST', '/logout', cookie)
    await slow
    const after = JSON.parse((await sendOk(url, 'GET', '/cart', cookie)).body) as {
      user: string | null
      items: Record<string, number>
    }
    if (after.user !== null || Object.keys(after.items).length > 0) resurrected++
  }
  return { trials, resurrected }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
