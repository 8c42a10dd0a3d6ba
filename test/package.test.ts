/**
 * The published package, as a user gets it: build, pack, install the tarball into a fresh
 * project, then require() and import every entry in package.json `exports`, and typecheck a
 * consumer in both module systems.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { expressSessionConsumer } from './support/express-session-consumer'

jest.setTimeout(240_000)

const root = resolve(__dirname, '..')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, unknown>
}
const entries = Object.keys(pkg.exports)
  .filter((e) => e !== './package.json')
  .map((e) => (e === '.' ? 'concord-session' : `concord-session/${e.slice(2)}`))
const npm = (args: string[], cwd: string) =>
  execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
const node = (args: string[], cwd: string) =>
  execFileSync(process.execPath, args, { cwd, encoding: 'utf8' })

let project: string

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'concord-consumer-'))
  npm(['run', 'build'], root)
  const tarball = npm(['pack', '--pack-destination', project, '--silent'], root)
    .trim()
    .split('\n')
    .pop()!
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true }))
  npm(['install', '--prefer-offline', '--no-audit', '--no-fund', join(project, tarball)], project)
  // The consumers below import express, as apps do; its types come from this repository.
  mkdirSync(join(project, 'node_modules', '@types'), { recursive: true })
  symlinkSync(
    join(root, 'node_modules', '@types', 'express'),
    join(project, 'node_modules', '@types', 'express'),
  )
})

/** The project's TypeScript and the latest 5.x: both must compile what users write. */
const compilers = [
  ["the project's TypeScript", join(root, 'node_modules', 'typescript', 'bin', 'tsc')],
  ['TypeScript 5.x', join(root, 'node_modules', 'typescript5', 'bin', 'tsc')],
] as const

/** Compiles `files` in the consumer project; returns the compiler's complaints ('' when none). */
function typecheck(tsc: string, files: string[], compilerOptions: Record<string, unknown>): string {
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        esModuleInterop: true,
        types: ['node'],
        typeRoots: [join(root, 'node_modules', '@types')],
        ...compilerOptions,
      },
      files,
    }),
  )
  try {
    node([tsc, '-p', join(project, 'tsconfig.json')], project)
    return ''
  } catch (err) {
    return String((err as { stdout?: string }).stdout)
  }
}

afterAll(() => rmSync(project, { recursive: true, force: true }))

describe('the packed package', () => {
  it.each(entries)('%s loads with require()', (entry) => {
    const out = node(
      [
        '-e',
        `const m = require(${JSON.stringify(entry)}); console.log(typeof m, Object.keys(m).sort().join(','))`,
      ],
      project,
    )
    expect(out).toMatch(/^(function|object) /)
  })

  it.each(entries)('%s loads with import', (entry) => {
    const out = node(
      [
        '--input-type=module',
        '-e',
        `import * as m from ${JSON.stringify(entry)}; console.log(Object.keys(m).length)`,
      ],
      project,
    )
    expect(Number(out)).toBeGreaterThan(0)
  })

  it('require("concord-session") is callable like express-session, and keeps its named exports', () => {
    const out = node(
      [
        '-e',
        `
      const session = require('concord-session')
      const { MemoryStore, StoreError } = require('concord-session')
      const middleware = session(new MemoryStore(), { secret: 's' })
      console.log(typeof middleware, middleware.name, typeof StoreError, session.default === session)
    `,
      ],
      project,
    )
    expect(out.trim()).toBe('function concordSession function true')
  })

  it('require("concord-session/express-session") has express-session\'s shape', () => {
    const out = node(
      [
        '-e',
        `
      const session = require('concord-session/express-session')
      console.log(typeof session, ['Store', 'MemoryStore', 'Cookie', 'Session'].map((k) => typeof session[k]).join(','))
      console.log(typeof session({ secret: 's', resave: false, saveUninitialized: false }))
    `,
      ],
      project,
    )
    expect(out.trim().split('\n')).toEqual([
      'function function,function,function,function',
      'function',
    ])
  })

  it('import session from "concord-session" gives the factory', () => {
    const out = node(
      [
        '--input-type=module',
        '-e',
        `
      import session, { MemoryStore } from 'concord-session'
      console.log(typeof session(new MemoryStore(), { secret: 's' }))
    `,
      ],
      project,
    )
    expect(out.trim()).toBe('function')
  })

  it('loading the core does not load ioredis (an optional peer, not installed here)', () => {
    const out = node(
      [
        '-e',
        `require('concord-session'); console.log(Object.keys(require.cache).filter((k) => k.includes('ioredis')).length)`,
      ],
      project,
    )
    expect(out.trim()).toBe('0')
  })

  it('loading the core or the postgres entry does not load pg (an optional peer, not installed here)', () => {
    const out = node(
      [
        '-e',
        `
      require('concord-session')
      const { PostgresStore } = require('concord-session/postgres')
      console.log(typeof PostgresStore, Object.keys(require.cache).filter((k) => /node_modules[\\/]pg[\\/]/.test(k)).length)
    `,
      ],
      project,
    )
    expect(out.trim()).toBe('function 0')
  })

  it('concord-session/redis loads neither ioredis nor redis (optional peers, not installed here), and names the clients it takes', () => {
    const out = node(
      [
        '-e',
        `
      const { RedisStore } = require('concord-session/redis')
      const loaded = Object.keys(require.cache).filter((k) => /node_modules[\\/](ioredis|redis|@redis)[\\/]/.test(k))
      let message = ''
      try { new RedisStore({ client: {} }) } catch (err) { message = err.constructor.name + ': ' + err.message }
      console.log(JSON.stringify({ loaded, message }))
    `,
      ],
      project,
    )
    const { loaded, message } = JSON.parse(out) as { loaded: string[]; message: string }
    expect(loaded).toEqual([])
    expect(message).toMatch(
      /^TypeError: RedisStore: client must be an ioredis Redis or Cluster, or a node-redis v5 client/,
    )
    const esm = node(
      [
        '--input-type=module',
        '-e',
        `
      import { RedisStore } from 'concord-session/redis'
      import { createRequire } from 'node:module'
      const require = createRequire(import.meta.url)
      const found = ['ioredis', 'redis'].filter((name) => { try { require.resolve(name); return true } catch { return false } })
      console.log(typeof RedisStore, JSON.stringify(found))
    `,
      ],
      project,
    )
    expect(esm.trim()).toBe('function []')
  })

  it('ships types that work from CommonJS and ESM consumers, with SessionData augmentation', () => {
    const consumer = `
      import session, { MemoryStore, type Session, type SessionData } from 'concord-session'
      declare module 'concord-session' {
        interface SessionData { cart: { items: string[] } }
      }
      const middleware = session(new MemoryStore(), { secret: 's', cookie: { maxAge: 1000 } })
      declare const s: Session & Partial<SessionData>
      const items: string[] | undefined = s.cart?.items
      // @ts-expect-error cart is typed
      s.cart = 5
      export { middleware, items }
    `
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
    // One program each: a project is CommonJS or ESM, and loading both builds' global
    // Express.Request augmentations into one program would declare req.session twice.
    for (const file of ['consumer.cts', 'consumer.mts']) {
      writeFileSync(join(project, file), consumer)
      writeFileSync(
        join(project, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            module: 'nodenext',
            moduleResolution: 'nodenext',
            strict: true,
            noEmit: true,
            skipLibCheck: true,
            types: ['node'],
            typeRoots: [join(root, 'node_modules', '@types')],
          },
          files: [file],
        }),
      )
      let output = ''
      try {
        node([tsc, '-p', join(project, 'tsconfig.json')], project)
      } catch (err) {
        output = String((err as { stdout?: string }).stdout)
      }
      expect(output).toBe('')
    }
  })

  describe.each(compilers)('concord-session/express-session types, with %s', (_name, tsc) => {
    it('compile a program written for @types/express-session with only the import changed (CommonJS: import = require)', () => {
      writeFileSync(
        join(project, 'es-consumer.cts'),
        expressSessionConsumer(
          "import express = require('express')\nimport session = require('concord-session/express-session')",
        ),
      )
      expect(
        typecheck(tsc, ['es-consumer.cts'], { module: 'nodenext', moduleResolution: 'nodenext' }),
      ).toBe('')
    })

    it('compile it as ESM (import session from)', () => {
      writeFileSync(
        join(project, 'es-consumer.mts'),
        expressSessionConsumer(
          "import express from 'express'\nimport session from 'concord-session/express-session'",
        ),
      )
      expect(
        typecheck(tsc, ['es-consumer.mts'], { module: 'nodenext', moduleResolution: 'nodenext' }),
      ).toBe('')
    })

    it("compile docs/express-session.md's migration example, SessionData augmentation included, as ESM and CommonJS", () => {
      const page = readFileSync(join(root, 'docs', 'express-session.md'), 'utf8')
      const example = /<!-- compiled by test\/package\.test\.ts -->\n```ts\n([\s\S]*?)\n```/.exec(
        page,
      )?.[1]
      expect(example).toContain("declare module 'concord-session/express-session'")
      for (const file of ['es-doc.mts', 'es-doc.cts']) {
        writeFileSync(join(project, file), example!)
        expect(typecheck(tsc, [file], { module: 'nodenext', moduleResolution: 'nodenext' })).toBe(
          '',
        )
      }
      // The augmentation is what types req.session.views: without it, the example fails.
      writeFileSync(
        join(project, 'es-doc-unaugmented.mts'),
        example!.replace("declare module 'concord-session/express-session'", 'namespace Other'),
      )
      expect(
        typecheck(tsc, ['es-doc-unaugmented.mts'], {
          module: 'nodenext',
          moduleResolution: 'nodenext',
        }),
      ).toMatch(/error TS2339: Property 'views' does not exist/)
    })

    it('fail where the program is wrong: a misspelt option, data of the wrong type', () => {
      writeFileSync(
        join(project, 'es-wrong.mts'),
        expressSessionConsumer(
          "import express from 'express'\nimport session from 'concord-session/express-session'",
        ) +
          "\nsession({ secret: 's', resave: 'yes' })\nconst wrong: session.SessionOptions = { secret: 1 }\n",
      )
      const output = typecheck(tsc, ['es-wrong.mts'], {
        module: 'nodenext',
        moduleResolution: 'nodenext',
      })
      expect(output).toMatch(/es-wrong\.mts\(\d+,\d+\): error TS2322/)
      expect(output.match(/error TS/g)).toHaveLength(2)
    })

    it('resolve concord-session/redis, /file and /express-session under "module": "commonjs" (moduleResolution node10)', () => {
      writeFileSync(
        join(project, 'node10.ts'),
        [
          "import session, { MemoryStore, type SessionData } from 'concord-session'",
          "import { RedisStore, type RedisStoreOptions } from 'concord-session/redis'",
          "import { FileStore, type FileStoreOptions } from 'concord-session/file'",
          "import dropIn = require('concord-session/express-session')",
          "const options: dropIn.SessionOptions = { secret: 's' }",
          'const middleware = dropIn(options)',
          "const main = session(new MemoryStore(), { secret: 's' })",
          'declare const redisOptions: RedisStoreOptions',
          "const fileOptions: FileStoreOptions = { dir: './sessions' }",
          'const stores: unknown[] = [RedisStore, FileStore, redisOptions, fileOptions]',
          'declare const data: SessionData',
          'export { middleware, main, stores, data }',
        ].join('\n'),
      )
      for (const moduleResolution of ['node10', 'node']) {
        const output = typecheck(tsc, ['node10.ts'], {
          module: 'commonjs',
          moduleResolution,
          ignoreDeprecations: tsc.includes('typescript5') ? '5.0' : '6.0',
        })
        expect(output).toBe('')
      }
    })
  })
})
