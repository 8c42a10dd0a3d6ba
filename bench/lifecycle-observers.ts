/**
 * What tracing and events cost: CPU per request with no diagnostics_channel subscriber and with
 * one, and with no `onEvent` listener and with one.
 */
import diagnostics_channel from 'node:diagnostics_channel'
import session, { MemoryStore, type SessionEvent } from '../entries/index.js'
import { drive, type Mw } from './fake-http.js'
import { median } from './load.js'
import { MAX_AGE_MS, SECRET } from './systems.js'
import {
  IN_FLIGHT,
  POOL_SESSIONS,
  SKUS,
  addItem,
  concord,
  logout,
  readCart,
  signIn,
} from './lifecycle-app.js'
import type { ObserverJob, ObserverRow } from './lifecycle-jobs.js'

interface Setup {
  mw: Mw
  enter(): void
  leave(): void
}

/** Runs `count` operations, IN_FLIGHT at a time. */
async function run(op: (i: number) => Promise<unknown>, count: number, start: number) {
  for (let done = 0; done < count; done += IN_FLIGHT)
    await Promise.all(Array.from({ length: IN_FLIGHT }, (_, k) => op(start + done + k)))
}

/**
 * CPU per operation of `op` without and with the observer, in rounds of `job.requests`
 * operations, ABBA order. `seen` counts what the observer received.
 */
async function paired(
  job: ObserverJob,
  workload: ObserverRow['workload'],
  plain: Setup,
  observed: Setup,
  op: (mw: Mw, i: number) => Promise<unknown>,
  seen: () => number,
): Promise<ObserverRow> {
  let counter = 0
  const measure = async (setup: Setup, count: number) => {
    setup.enter()
    const cpu0 = process.cpuUsage()
    await run((i) => op(setup.mw, i), count, counter)
    const cpu = process.cpuUsage(cpu0)
    setup.leave()
    counter += count
    return (cpu.user + cpu.system) / count
  }
  await measure(plain, job.warmup)
  await measure(observed, job.warmup)
  const without: number[] = []
  const withIt: number[] = []
  let seenMeasured = 0
  for (let round = 0; round < job.rounds; round++) {
    const order = round % 2 === 0 ? [plain, observed] : [observed, plain]
    for (const setup of order) {
      const seen0 = seen()
      const us = await measure(setup, job.requests)
      if (setup === plain) without.push(us)
      else {
        withIt.push(us)
        seenMeasured += seen() - seen0
      }
    }
  }
  return {
    workload,
    plainUs: median(without),
    observedUs: median(withIt),
    diffUs: median(withIt.map((us, i) => us - without[i]!)),
    seenPerOp: seenMeasured / (job.requests * job.rounds),
    opsPerRound: job.requests,
    rounds: job.rounds,
  }
}

async function cookiePool(mw: Mw): Promise<string[]> {
  const cookies: string[] = []
  for (let i = 0; i < POOL_SESSIONS; i++) cookies.push((await signIn(mw)).cookie)
  return cookies
}

const read = (cookies: readonly string[]) => (mw: Mw, i: number) =>
  drive(mw, readCart, '/cart', cookies[i % cookies.length])

const write = (cookies: readonly string[]) => (mw: Mw, i: number) =>
  drive(
    mw,
    addItem,
    `/cart/add/${SKUS[Math.floor(i / cookies.length) % SKUS.length]}`,
    cookies[i % cookies.length],
    'POST',
  )

/** A metrics exporter's subscriber: counts each operation and sums its duration. */
export async function tracing(job: ObserverJob): Promise<ObserverRow[]> {
  const store = new MemoryStore()
  const mw = concord(store, undefined)
  const cookies = await cookiePool(mw)
  const totals = { completed: 0, ms: 0, errors: 0 }
  const subscriber = {
    start() {},
    end() {},
    asyncStart() {},
    asyncEnd(ctx: { duration?: number }) {
      totals.completed++
      totals.ms += ctx.duration ?? 0
    },
    error() {
      totals.errors++
    },
  }
  const channels = ['load', 'save', 'destroy', 'touch'].map((name) =>
    diagnostics_channel.tracingChannel<unknown, { duration?: number }>(`concord-session:${name}`),
  )
  const plain: Setup = { mw, enter() {}, leave() {} }
  const traced: Setup = {
    mw,
    enter: () => channels.forEach((c) => c.subscribe(subscriber)),
    leave: () => channels.forEach((c) => c.unsubscribe(subscriber)),
  }
  const seen = () => totals.completed
  const rows = [
    await paired(job, 'read', plain, traced, read(cookies), seen),
    await paired(job, 'write', plain, traced, write(cookies), seen),
  ]
  await store.close()
  if (totals.errors > 0) throw new Error(`bench: ${totals.errors} traced store calls failed`)
  return rows
}

/** An audit log's listener: one JSON line per event (kept in memory, written nowhere). */
export async function events(job: ObserverJob): Promise<ObserverRow[]> {
  const store = new MemoryStore()
  let received = 0
  let lastLine = ''
  const onEvent = (event: SessionEvent) => {
    received++
    lastLine = JSON.stringify(event)
  }
  const plain: Setup = { mw: concord(store, undefined), enter() {}, leave() {} }
  const listening: Setup = {
    mw: session(store, { secret: SECRET, cookie: { maxAge: MAX_AGE_MS }, onEvent }) as Mw,
    enter() {},
    leave() {},
  }
  const cookies = await cookiePool(plain.mw)
  const signInOut = async (mw: Mw) => {
    const { cookie } = await signIn(mw)
    await drive(mw, logout, '/logout', cookie, 'POST')
  }
  const seen = () => received
  const rows = [
    await paired(job, 'read', plain, listening, read(cookies), seen),
    await paired(job, 'sign-in + sign-out', plain, listening, signInOut, seen),
  ]
  await store.close()
  if (received > 0 && !lastLine.includes('"type"'))
    throw new Error('bench: the listener got events without a type')
  return rows
}
