/**
 * Compiles entries/, lib/, stores/ and bench/ to CommonJS the way the published build does
 * (TypeScript, target ES2022, one file at a time, which isolatedModules makes equal to a full
 * tsc emit), into a scratch directory the children (servers, memory) run from with plain node.
 *
 * Why not run the .ts through tsx, as the orchestrator does: tsx adds a `__name()` call wherever
 * a named function is created (keepNames) and squeezes each file onto a couple of lines, so
 * neither the time nor a profile's line numbers would be those of the shipped code; and each
 * tsx process starts its own esbuild, which makes ten children slow to start. Inline source
 * maps let bench/profile.ts name TypeScript lines.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import ts from 'typescript'

const ROOT = join(__dirname, '..')
const SOURCES = ['entries', 'lib', 'stores', 'bench']
/** Scratch space, including earlier builds. */
const SKIP = join(ROOT, 'bench', '.tmp')

/** Writes the compiled tree (entries/, lib/, stores/, bench/) under `outDir`; returns `outDir`. */
export function buildTree(outDir: string): string {
  for (const dir of SOURCES) {
    for (const file of walk(join(ROOT, dir))) {
      if (!file.endsWith('.ts') || file.endsWith('.d.ts')) continue
      const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), {
        fileName: file,
        compilerOptions: {
          module: ts.ModuleKind.CommonJS,
          target: ts.ScriptTarget.ES2022,
          esModuleInterop: true,
          inlineSourceMap: true,
        },
      })
      const target = join(outDir, relative(ROOT, file)).replace(/\.ts$/, '.js')
      mkdirSync(dirname(target), { recursive: true })
      writeFileSync(target, outputText)
    }
  }
  // The repo's package.json has no "type", so .js is CommonJS already; say it anyway.
  writeFileSync(join(outDir, 'package.json'), '{ "type": "commonjs" }\n')
  return outDir
}

function* walk(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (path === SKIP) continue
    if (entry.isDirectory()) yield* walk(path)
    else yield path
  }
}
