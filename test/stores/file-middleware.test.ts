import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileStore } from '../../entries/file'
import { describeMiddlewareOverStore } from '../middleware-store-suite'

const root = mkdtempSync(join(tmpdir(), 'concord-file-mw-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

// Real files, real locks and fsync: every request of the 200 goes through load, save and, on a
// version conflict, a replay onto the file's current record.
describeMiddlewareOverStore('FileStore', async () => new FileStore({ dir: join(root, 'sessions') }))
describeMiddlewareOverStore(
  'FileStore',
  async () => new FileStore({ dir: join(root, 'limited') }),
  { maxSessionsPerUser: 3, touchAfter: 60_000 },
)
describeMiddlewareOverStore(
  'FileStore',
  async () => new FileStore({ dir: join(root, 'observed') }),
  { observed: true },
)
// Ids renewed every few requests while 200 run at once: requests straddle renewals.
describeMiddlewareOverStore(
  'FileStore',
  async () => new FileStore({ dir: join(root, 'renewing') }),
  { renew: { afterRequests: 15 } },
)
