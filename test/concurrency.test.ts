/**
 * No lost updates across processes: two session() instances over one store have separate
 * per-process queues, so their saves really conflict and must be replayed.
 */
import express from 'express'
import request from 'supertest'
import session, { MemoryStore } from '../entries/index'
import { KeyedQueue } from '../lib/keyed-queue'
import { cookiePair, sessionCookie, sleep } from './support/http'
import { CountingStore } from './support/stores'

type Data = Record<string, unknown>

function processOver(store: MemoryStore | CountingStore) {
  const app = express()
  app.use(session(store, { secret: 'concurrency-secret' }))
  app.post('/prefs/:key/:value', async (req, res) => {
    const prefs = ((req.session as unknown as Data).prefs ??= {}) as Record<string, string>
    await sleep(Math.random() * 15)
    prefs[req.params.key!] = req.params.value!
    res.end()
  })
  app.post('/top/:key', async (req, res) => {
    await sleep(Math.random() * 15)
    ;(req.session as unknown as Data)[req.params.key!] = true
    res.end()
  })
  app.get('/read', (req, res) => res.json({ ...req.session }))
  return app
}

describe('two processes on one session', () => {
  it('keep changes to different top-level keys', async () => {
    const store = new MemoryStore()
    const [a, b] = [processOver(store), processOver(store)]
    const cookie = cookiePair(sessionCookie(await request(a).post('/top/seed')))
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`)
    await Promise.all(
      keys.map((key, i) =>
        request(i % 2 ? a : b)
          .post(`/top/${key}`)
          .set('Cookie', cookie),
      ),
    )
    const data = (await request(a).get('/read').set('Cookie', cookie)).body
    expect(Object.keys(data).sort()).toEqual(['seed', ...keys].sort())
  })

  it('keep changes to different paths inside one key, replaying on conflict', async () => {
    const store = new CountingStore()
    const [a, b] = [processOver(store), processOver(store)]
    const cookie = cookiePair(sessionCookie(await request(a).post('/prefs/first/1')))
    const keys = Array.from({ length: 60 }, (_, i) => `p${i}`)
    await Promise.all(
      keys.map((key, i) =>
        request(i % 2 ? a : b)
          .post(`/prefs/${key}/v${i}`)
          .set('Cookie', cookie),
      ),
    )
    const prefs = (await request(b).get('/read').set('Cookie', cookie)).body.prefs
    expect(Object.keys(prefs)).toHaveLength(61)
    keys.forEach((key, i) => expect(prefs[key]).toBe(`v${i}`))
    // The two processes did collide: more saves than requests means conflicts were replayed.
    expect(store.calls.save).toBeGreaterThan(61)
  })

  it('end with the later write when both write the same path', async () => {
    const store = new MemoryStore()
    const [a, b] = [processOver(store), processOver(store)]
    const cookie = cookiePair(sessionCookie(await request(a).post('/prefs/theme/light')))
    await request(a).post('/prefs/theme/dark').set('Cookie', cookie)
    await request(b).post('/prefs/theme/blue').set('Cookie', cookie)
    expect((await request(a).get('/read').set('Cookie', cookie)).body.prefs).toEqual({
      theme: 'blue',
    })
  })
})

describe('KeyedQueue', () => {
  it('runs tasks of one key in order and of different keys side by side, and forgets idle keys', async () => {
    const queue = new KeyedQueue()
    const log: string[] = []
    const task = (name: string, ms: number) => async () => {
      log.push(`start ${name}`)
      await sleep(ms)
      log.push(`end ${name}`)
      if (name === 'a2') throw new Error('a2 failed')
    }
    const results = await Promise.allSettled([
      queue.run('a', task('a1', 30)),
      queue.run('a', task('a2', 1)),
      queue.run('a', task('a3', 1)),
      queue.run('b', task('b1', 5)),
    ])
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
    ])
    expect(log.indexOf('end a1')).toBeLessThan(log.indexOf('start a2'))
    expect(log.indexOf('end a2')).toBeLessThan(log.indexOf('start a3'))
    expect(log.indexOf('end b1')).toBeLessThan(log.indexOf('end a1'))
    await sleep(0)
    expect(queue.size).toBe(0)
  })
})
