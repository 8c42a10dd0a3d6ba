/**
 * Two app processes on one FileStore directory: 1000 concurrent adds to one cart split between
 * them are all answered 200 and all kept, and a logout in one process racing writes in the
 * other leaves the session destroyed. Again with ids renewed every 40 requests in each process:
 * the first cookie keeps reaching the one session through the forwards, and nothing is lost.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describeTwoProcesses } from '../two-process-suite'

const dir = mkdtempSync(join(tmpdir(), 'concord-file-two-'))
const renewing = mkdtempSync(join(tmpdir(), 'concord-file-two-renew-'))
afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
  rmSync(renewing, { recursive: true, force: true })
})

describeTwoProcesses('FileStore', { FILE_DIR: dir })
describeTwoProcesses('FileStore, renewing ids every 40 requests', {
  FILE_DIR: renewing,
  RENEW_AFTER: '40',
})
