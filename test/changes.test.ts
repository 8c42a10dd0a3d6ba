import {
  applyOps,
  changesSince,
  type DataDiff,
  diffValue,
  ReplayOnto,
  replayKey,
  SessionDataError,
} from '../lib/changes'

/** changesSince as a diff either way: a number means nothing changed. */
function diffData(data: object, baseline: Record<string, string>): DataDiff {
  const result = changesSince(data, baseline)
  return typeof result === 'number'
    ? { set: {}, unset: [], texts: baseline, size: result, changed: false }
    : result
}

/** The obvious diff, with every key stringified: the oracle for changesSince's shortcuts. */
function referenceDiff(data: Record<string, unknown>, baseline: Record<string, string>) {
  const set: Record<string, string> = {}
  const texts: Record<string, string> = {}
  let size = 0
  for (const key of Object.keys(data)) {
    const text = key === 'cookie' ? undefined : JSON.stringify(data[key])
    if (text === undefined) continue
    texts[key] = text
    size += key.length + text.length
    if (baseline[key] !== text) set[key] = text
  }
  const unset = Object.keys(baseline).filter((key) => !Object.hasOwn(texts, key))
  return { set, unset, texts, size, changed: true }
}

describe('changesSince: the diff', () => {
  it('finds changed, added and removed keys, including nested mutations', () => {
    const loaded = { cart: { items: ['tea'] }, visits: 1, gone: true }
    const baseline = Object.fromEntries(
      Object.entries(loaded).map(([k, v]) => [k, JSON.stringify(v)]),
    )
    const data = JSON.parse(JSON.stringify(loaded))
    data.cart.items.push('jam')
    delete data.gone
    data.added = 'x'
    const diff = diffData(data, baseline)
    expect(diff.set).toEqual({ cart: '{"items":["tea","jam"]}', added: '"x"' })
    expect(diff.unset).toEqual(['gone'])
    expect(diff.changed).toBe(true)
    expect(diff.texts).toEqual({ cart: '{"items":["tea","jam"]}', visits: '1', added: '"x"' })
  })

  it('reports no change for untouched data, as a size', () => {
    expect(changesSince({ a: { b: [1] } }, { a: '{"b":[1]}' })).toBe(1 + 9)
  })

  it('treats a value JSON drops (undefined, a function) as deleted', () => {
    expect(diffData({ a: undefined, f: () => 1 }, { a: '1' })).toMatchObject({
      unset: ['a'],
      set: {},
      changed: true,
    })
  })

  it('measures the size in characters of JSON', () => {
    expect(diffData({ ab: 'xyz' }, {}).size).toBe(2 + 5)
  })

  it('names the key that cannot be serialized', () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(() => diffData({ ok: 1, big: 10n }, {})).toThrow(SessionDataError)
    expect(() => diffData({ big: 10n }, {})).toThrow(/session key "big" cannot be saved as JSON/)
    expect(() => diffData({ loop: cyclic }, {})).toThrow(/session key "loop"/)
  })
})

describe('changesSince', () => {
  const baseline = { user: '"ann"', cart: '{"items":["tea"]}', visits: '3' }

  it('measures an unchanged session without building a diff', () => {
    const data = { user: 'ann', cart: { items: ['tea'] }, visits: 3 }
    expect(changesSince(data, baseline)).toBe(4 + 5 + 4 + 17 + 6 + 1)
    // A value JSON drops, absent from the baseline, is no change.
    expect(changesSince({ ...data, f: () => 1 }, baseline)).toBe(37)
  })

  it.each([
    ['the first key changed', { user: 'bob', cart: { items: ['tea'] }, visits: 3 }],
    ['a middle key changed', { user: 'ann', cart: { items: ['tea', 'jam'] }, visits: 3 }],
    ['the last key changed', { user: 'ann', cart: { items: ['tea'] }, visits: 4 }],
    ['a key was added', { user: 'ann', cart: { items: ['tea'] }, visits: 3, theme: 'dark' }],
    ['a key was deleted', { user: 'ann', visits: 3 }],
    ['a key became undefined', { user: 'ann', cart: undefined, visits: 3 }],
    ['keys were reordered and one changed', { visits: 5, cart: { items: [] }, user: 'ann' }],
  ])('gives the same diff as stringifying every key when %s', (_, data) => {
    const diff = changesSince(data, baseline)
    expect(typeof diff).toBe('object')
    expect(diff).toEqual(referenceDiff(data, baseline))
  })

  it('leaves the session cookie out', () => {
    const data = { cookie: { maxAge: 5 }, user: 'ann', visits: 4 }
    const diff = changesSince(data, { user: '"ann"', visits: '3' })
    expect(diff).toEqual(referenceDiff(data, { user: '"ann"', visits: '3' }))
    expect(diff).toMatchObject({ set: { visits: '4' }, unset: [] })
  })

  it('throws a SessionDataError naming the key that cannot be JSON, before or after a change', () => {
    expect(() => changesSince({ big: 10n }, {})).toThrow(/session key "big"/)
    expect(() => changesSince({ visits: 4, big: 10n }, { visits: '3' })).toThrow(SessionDataError)
  })
})

describe('diffValue and applyOps', () => {
  it('diffs a new nested container as a creation, so it merges with one made concurrently', () => {
    expect(diffValue({}, { cart: { items: ['a'] } })).toEqual([
      { kind: 'init', path: ['cart'] },
      { kind: 'append', path: ['cart', 'items'], items: ['a'], whole: ['a'] },
    ])
  })

  it('diffs objects by path', () => {
    expect(diffValue({ a: 1, b: { c: 2, d: 3 } }, { a: 1, b: { c: 5 }, e: 6 })).toEqual([
      { kind: 'set', path: ['b', 'c'], value: 5 },
      { kind: 'delete', path: ['b', 'd'] },
      { kind: 'set', path: ['e'], value: 6 },
    ])
  })

  it('turns a pure append into an append op, anything else into a replacement', () => {
    expect(diffValue([1, 2], [1, 2, 3])).toEqual([
      { kind: 'append', path: [], items: [3], whole: [1, 2, 3] },
    ])
    expect(diffValue([1, 2], [2])).toEqual([{ kind: 'set', path: [], value: [2] }])
    expect(diffValue([1, 2], [1, 9, 3])).toEqual([{ kind: 'set', path: [], value: [1, 9, 3] }])
    expect(diffValue([{ a: 1 }], [{ a: 1 }])).toEqual([])
  })

  it('applies ops onto other data, creating missing parents', () => {
    const target = { b: { x: 1 }, list: ['theirs'] }
    const result = applyOps(target, [
      { kind: 'set', path: ['b', 'c'], value: 5 },
      { kind: 'set', path: ['n', 'm'], value: 1 },
      { kind: 'append', path: ['list'], items: ['mine'], whole: ['mine'] },
      { kind: 'delete', path: ['nothing', 'here'] },
    ])
    expect(result).toEqual({ b: { x: 1, c: 5 }, n: { m: 1 }, list: ['theirs', 'mine'] })
  })

  it('replaces with the whole array when the target is no longer an array', () => {
    expect(
      applyOps({ list: 'gone' }, [
        { kind: 'append', path: ['list'], items: ['b'], whole: ['a', 'b'] },
      ]),
    ).toEqual({ list: ['a', 'b'] })
  })

  it('keeps "__proto__" an own key and never touches a prototype', () => {
    const ops = diffValue({}, JSON.parse('{"__proto__":{"polluted":true}}'))
    const result = applyOps({}, ops) as Record<string, unknown>
    expect(Object.keys(result)).toEqual(['__proto__'])
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype)
  })
})

describe('replayKey', () => {
  it('merges changes to different paths of one key', () => {
    expect(JSON.parse(replayKey('{"a":1}', '{"a":1,"b":2}', '{"a":1,"c":3}'))).toEqual({
      a: 1,
      b: 2,
      c: 3,
    })
  })

  it('lets the later write win on the same path', () => {
    expect(JSON.parse(replayKey('{"a":1}', '{"a":2}', '{"a":3}'))).toEqual({ a: 2 })
  })

  it('appends onto a list another request also appended to', () => {
    expect(
      JSON.parse(
        replayKey('{"items":["x"]}', '{"items":["x","mine"]}', '{"items":["x","theirs"]}'),
      ),
    ).toEqual({
      items: ['x', 'theirs', 'mine'],
    })
  })

  it('merges a key that both requests created: objects per path, arrays by appending', () => {
    expect(
      JSON.parse(
        replayKey(undefined, '{"items":["mine"],"owner":"a"}', '{"items":["theirs"],"coupon":"X"}'),
      ),
    ).toEqual({
      items: ['theirs', 'mine'],
      owner: 'a',
      coupon: 'X',
    })
    expect(JSON.parse(replayKey(undefined, '["mine"]', '["theirs"]'))).toEqual(['theirs', 'mine'])
    expect(JSON.parse(replayKey(undefined, '{"empty":{}}', '{"other":1}'))).toEqual({
      other: 1,
      empty: {},
    })
    expect(replayKey(undefined, '1', '2')).toBe('1')
    expect(replayKey(undefined, '{"a":1}', '"a string"')).toBe('{"a":1}')
  })

  it("takes this request's text whole when the key is deleted there or unchanged there", () => {
    expect(replayKey('{"a":1}', '{"a":2}', undefined)).toBe('{"a":2}')
    expect(replayKey('{"a":1}', '{"a":2}', '{"a":1}')).toBe('{"a":2}')
  })

  it('replays a primitive change as a replacement', () => {
    expect(replayKey('1', '2', '5')).toBe('2')
  })
})

describe('ReplayOnto', () => {
  it('replays several requests in turn: adds to one key from each all land, written once', () => {
    const loaded = { cart: '{"items":{"a":1}}', user: '"ann"' }
    const replay = new ReplayOnto({ cart: '{"items":{"a":1,"x":1}}', user: '"ann"' })
    replay.apply(loaded, { cart: '{"items":{"a":1,"b":1}}' }, [])
    replay.apply(loaded, { cart: '{"items":{"a":1,"c":1}}' }, [])
    expect(JSON.parse(replay.texts().cart!)).toEqual({ items: { a: 1, x: 1, b: 1, c: 1 } })
  })

  it('gives the same result as replayKey for one request', () => {
    const cases: Array<[string | undefined, string, string | undefined]> = [
      ['{"a":1}', '{"a":1,"b":2}', '{"a":1,"c":3}'],
      ['[1]', '[1,2]', '[1,3]'],
      [undefined, '{"items":["a"]}', '{"items":["b"]}'],
      ['{"a":1}', '{"a":2}', undefined],
      ['{"a":1}', '{"a":2}', '{"a":1}'],
    ]
    for (const [loaded, mine, theirs] of cases) {
      const replay = new ReplayOnto(theirs === undefined ? {} : { k: theirs })
      replay.apply(loaded === undefined ? {} : { k: loaded }, { k: mine }, [])
      expect(replay.texts().k).toBe(replayKey(loaded, mine, theirs))
    }
  })

  it('deletes what a request unset, and a later request that sets it again wins', () => {
    const replay = new ReplayOnto({ a: '1', b: '2' })
    replay.apply({ a: '1', b: '2' }, {}, ['a'])
    expect(replay.texts()).toEqual({ b: '2' })
    replay.apply({ a: '1', b: '2' }, { a: '5' }, [])
    expect(replay.texts()).toEqual({ b: '2', a: '5' })
  })
})
