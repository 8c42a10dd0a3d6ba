/**
 * This process's last saves: the newest per id, bounded by entries and by characters, the least
 * recently saved going first, also when one busy session is saved again and again.
 */
import { RecentSaves, type SavedState } from '../lib/recent-saves'

function saved(version: number, size = 10): SavedState {
  return { version, data: {}, cookie: {}, userId: undefined, createdAt: 0, keyExpires: {}, size }
}

describe('recent saves', () => {
  it('give the newest save of an id only when it is newer than the version asked about', () => {
    const recent = new RecentSaves()
    recent.remember('a', saved(1))
    recent.remember('a', saved(2))
    expect(recent.newerThan('a', 1)?.version).toBe(2)
    expect(recent.newerThan('a', 2)).toBeUndefined()
    expect(recent.size).toBe(1)
  })

  it('drop the least recently saved first, a session saved again counting as recent', () => {
    const recent = new RecentSaves(2)
    recent.remember('a', saved(1))
    recent.remember('b', saved(1))
    recent.remember('b', saved(2)) // the newest again
    recent.remember('a', saved(2)) // a moves after b
    recent.remember('c', saved(1)) // b goes
    expect(recent.newerThan('b', 0)).toBeUndefined()
    expect(recent.newerThan('a', 0)?.version).toBe(2)
    expect(recent.newerThan('c', 0)?.version).toBe(1)
  })

  it('keep within the character bound when the newest grows', () => {
    const recent = new RecentSaves(10, 100)
    recent.remember('a', saved(1, 40))
    recent.remember('b', saved(1, 40))
    recent.remember('b', saved(2, 50)) // 90 in all
    expect(recent.size).toBe(2)
    recent.remember('b', saved(3, 70)) // 110: a goes
    expect(recent.newerThan('a', 0)).toBeUndefined()
    expect(recent.newerThan('b', 0)?.version).toBe(3)
    recent.remember('b', saved(4, 101)) // larger than the bound: not kept
    expect(recent.size).toBe(0)
    recent.forget('b')
    recent.remember('b', saved(5, 30))
    expect(recent.newerThan('b', 4)?.version).toBe(5)
  })
})
