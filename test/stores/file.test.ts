import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileStore } from '../../stores/file'
import { describeStore } from '../store-conformance'

const root = mkdtempSync(join(tmpdir(), 'concord-file-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
let n = 0
const freshDir = () => join(root, `store-${n++}`)

describeStore('FileStore', async () => new FileStore({ dir: freshDir() }))
