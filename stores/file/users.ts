/**
 * The per-user index: users/<sha256(userId)>/<session key>, one empty file per session of the user.
 * An entry is added before the session file names its user and removed after it stops, so a crash
 * leaves at worst an extra entry (pruned when read), never a session missing from its user's index.
 */
import { open } from 'node:fs/promises'
import type { Read } from './format.js'
import { KEY, keyOf } from './format.js'
import { isCode, makeDir, readdirOrEmpty, unlinkQuiet } from './fs.js'

export class UserDirectory {
  readonly #dir: string

  constructor(dir: string) {
    this.#dir = dir
  }

  /** The directory of one user's entries. */
  dirOf(userId: string): string {
    return `${this.#dir}/${keyOf(userId)}`
  }

  /** Session keys in the user's index directory. */
  async entries(userId: string): Promise<string[]> {
    return (await readdirOrEmpty(this.dirOf(userId))).filter((name) => KEY.test(name))
  }

  /**
   * The user's live sessions other than the one at `exceptKey`, by id, with their file key and
   * when each began: what `maxSessionsPerUser` counts. Run under the user's lock.
   */
  async liveSessions(
    userId: string,
    exceptKey: string,
    read: (key: string) => Promise<Read>,
  ): Promise<Map<string, { id: string; key: string; createdAt: number }>> {
    const live = new Map<string, { id: string; key: string; createdAt: number }>()
    for (const key of await this.entries(userId)) {
      if (key === exceptKey) continue
      const found = await read(key)
      if (found.kind === 'ok' && found.file.userId === userId && found.expiresAt > Date.now())
        live.set(found.file.id, { id: found.file.id, key, createdAt: found.file.createdAt })
    }
    return live
  }

  async add(userId: string, key: string): Promise<void> {
    const dir = this.dirOf(userId)
    // Another process may remove the user's directory when it empties; make it again and retry.
    for (let attempt = 0; ; attempt++) {
      await makeDir(dir)
      try {
        await (await open(`${dir}/${key}`, 'a', 0o600)).close()
        return
      } catch (err) {
        if (!isCode(err, 'ENOENT') || attempt >= 5) throw err
      }
    }
  }

  async remove(userId: string, key: string): Promise<void> {
    await unlinkQuiet(`${this.dirOf(userId)}/${key}`)
  }
}
