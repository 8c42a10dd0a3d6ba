import {
  isClearable,
  isClosable,
  isCountable,
  isUserIndex,
  MemoryStore,
  type Store,
} from '../entries/index'

/** The four methods every store has, and nothing else. */
function bareStore(): Store {
  return {
    load: async () => null,
    save: async () => ({ ok: true, version: 1 }),
    touch: async () => undefined,
    destroy: async () => undefined,
  }
}

describe('store capability guards', () => {
  it('find none of the optional capabilities on a store with only the four methods', () => {
    const store = bareStore()
    expect([isUserIndex(store), isCountable(store), isClearable(store), isClosable(store)]).toEqual(
      [false, false, false, false],
    )
  })

  it('find each capability whose methods are functions', () => {
    const store = Object.assign(bareStore(), {
      listByUser: async () => [],
      destroyByUser: async () => 0,
      count: async () => 0,
      clear: async () => undefined,
      close: async () => undefined,
    })
    expect([isUserIndex(store), isCountable(store), isClearable(store), isClosable(store)]).toEqual(
      [true, true, true, true],
    )
  })

  it('need both per-user methods, and methods rather than other values', () => {
    expect(isUserIndex(Object.assign(bareStore(), { listByUser: async () => [] }))).toBe(false)
    expect(isUserIndex(Object.assign(bareStore(), { destroyByUser: async () => 0 }))).toBe(false)
    expect(isCountable(Object.assign(bareStore(), { count: 3 }))).toBe(false)
    expect(isClosable(Object.assign(bareStore(), { close: true }))).toBe(false)
  })

  it('see every capability of the MemoryStore', async () => {
    const store = new MemoryStore()
    try {
      expect([
        isUserIndex(store),
        isCountable(store),
        isClearable(store),
        isClosable(store),
      ]).toEqual([true, true, true, true])
    } finally {
      await store.close()
    }
  })
})
