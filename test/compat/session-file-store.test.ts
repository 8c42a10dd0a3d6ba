/**
 * session-file-store built on the drop-in's Store (it calls `Store.call(this, options)`), in a
 * temp directory: the concurrency suite through the adapter, the file's format, and its ENOENT
 * for an unknown id, which means "not found".
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sign } from 'cookie-signature'
import express from 'express'
import request from 'supertest'
import dropIn, { adaptLegacyStore, Store } from '../../entries/express-session.js'
import { describeMiddlewareOverStore } from '../middleware-store-suite.js'
import { cookieOf, viewsApp } from './support/http.js'
import { createFileStore } from './support/modules.js'

const SECRET = 'file-store-secret'
const FileStore = createFileStore(dropIn)
const dirs: string[] = []

/** A FileStore in a fresh temp dir. retries: 0 because every miss is otherwise retried 5 times. */
function fileStore(options: Record<string, unknown> = {}) {
  const path = mkdtempSync(join(tmpdir(), 'concord-compat-sfs-'))
  dirs.push(path)
  return new FileStore({ path, retries: 0, reapInterval: -1, logFn: () => {}, ...options })
}

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

describeMiddlewareOverStore('adapted session-file-store', async () => adaptLegacyStore(fileStore()))

describe('session-file-store through the drop-in', () => {
  const app = (store: object) =>
    viewsApp(
      express(),
      dropIn({
        secret: SECRET,
        store,
        resave: false,
        saveUninitialized: false,
        cookie: { maxAge: 600_000 },
      }),
    )

  it("extends the drop-in's Store and writes express-session's format, plus its own __lastAccess", async () => {
    const store = fileStore()
    expect(store).toBeInstanceOf(Store)
    const first = await request(app(store)).get('/views')
    const { id } = first.body as { id: string }
    const file = JSON.parse(readFileSync(join(store.options.path, `${id}.json`), 'utf8'))
    expect(file).toEqual({
      cookie: { originalMaxAge: 600_000, expires: expect.any(String), httpOnly: true, path: '/' },
      views: 1,
      __concord: expect.objectContaining({ version: 1, idleTimeout: 600_000 }),
      __lastAccess: expect.any(Number),
    })
    const cookie = cookieOf(first)
    expect((await request(app(store)).get('/views').set('Cookie', cookie)).body.views).toBe(2)
  })

  it('an unknown id (ENOENT after its default 5 retries) is a new session, not an error', async () => {
    const store = fileStore({ retries: 5, minTimeout: 10, maxTimeout: 10 })
    expect(await adaptLegacyStore(store).load('no-such-session')).toBeNull()
    const signedUnknown = `connect.sid=${encodeURIComponent(`s:${sign('no-such-session', SECRET)}`)}`
    const res = await request(app(store)).get('/views').set('Cookie', signedUnknown)
    expect(res.body.views).toBe(1)
    expect(res.body.id).not.toBe('no-such-session') // a fresh id, never the client's
    expect(store.options.retries).toBe(5)
  })
})
