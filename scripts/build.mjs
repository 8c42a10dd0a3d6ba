// Builds dist/cjs and dist/esm from one source tree, with types for both.
//
// CommonJS callers write `const session = require('concord-session')` and call it, as they
// did with express-session, so each CommonJS entry is a small shim that makes the default
// export the module itself while keeping the named exports on it.
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, basename, join } from 'node:path'

const tsc = join('node_modules', 'typescript', 'bin', 'tsc')
const pkg = JSON.parse(readFileSync('package.json', 'utf8'))

rmSync('dist', { recursive: true, force: true })
execFileSync(
  process.execPath,
  [
    tsc,
    '-p',
    'tsconfig.build.json',
    '--outDir',
    'dist/cjs',
    '--module',
    'NodeNext',
    '--moduleResolution',
    'NodeNext',
  ],
  { stdio: 'inherit' },
)
execFileSync(
  process.execPath,
  [
    tsc,
    '-p',
    'tsconfig.build.json',
    '--outDir',
    'dist/esm',
    '--module',
    'ES2022',
    '--moduleResolution',
    'Bundler',
  ],
  { stdio: 'inherit' },
)
writeFileSync('dist/cjs/package.json', '{ "type": "commonjs" }\n')
writeFileSync('dist/esm/package.json', '{ "type": "module" }\n')

for (const [entry, target] of Object.entries(pkg.exports)) {
  const shim = target?.require?.default
  if (!shim) continue
  const compiled = `./${basename(shim, '.cjs')}.js`
  writeFileSync(
    shim,
    [
      `'use strict'`,
      `// CommonJS entry for ${JSON.stringify(entry)}: the default export is the module itself.`,
      `const lib = require(${JSON.stringify(compiled)})`,
      `module.exports = lib.default ? Object.assign(lib.default, lib) : lib`,
      '',
    ].join('\n'),
  )
  console.log(`built ${entry} -> ${dirname(shim)}`)
}

// An entry whose CommonJS types are a .d.cts gets one that is `export =` its default export,
// so `import session = require('concord-session/express-session')` is callable and typed as
// with @types/express-session. That default carries every export, types included.
for (const [entry, target] of Object.entries(pkg.exports)) {
  const types = target?.require?.types
  if (!types?.endsWith('.d.cts')) continue
  writeFileSync(
    types,
    [
      `// CommonJS types for ${JSON.stringify(entry)}: require() gives the default export, which carries every export.`,
      `import entry from './${basename(types, '.d.cts')}.js'`,
      'export = entry',
      '',
    ].join('\n'),
  )
}

// A class with #private fields is declared with a `#private;` member, which TypeScript 5 rejects
// (TS18028) when the consumer's target is ES5, its default for "module": "commonjs", unless
// skipLibCheck is on. A private member that no code can name keeps the class nominal just as
// well, for every target.
for (const file of readdirSync('dist', { recursive: true, encoding: 'utf8' })) {
  if (!/\.d\.c?ts$/.test(file)) continue
  const path = join('dist', file)
  const text = readFileSync(path, 'utf8')
  const patched = text.replace(/^(\s+)#private;$/gm, '$1private "#private";')
  if (patched !== text) writeFileSync(path, patched)
}
