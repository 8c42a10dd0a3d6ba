#!/usr/bin/env bash
# Compiles DefinitelyTyped's test program for @types/express-session against the packed drop-in,
# concord-session/express-session, as a TypeScript user who changes only the import would.
#
#   scripts/definitelytyped-check.sh /tmp/dt/express-session-tests.ts
#
# FILE is types/express-session/express-session-tests.ts from a checkout of
# DefinitelyTyped/DefinitelyTyped (kept outside this repository). The script builds and packs
# this package, installs the tarball into a fresh project in a temporary directory, copies FILE
# there with one change, the module name 'express-session' -> 'concord-session/express-session'
# (in its imports and in its `declare module`), and compiles it with DefinitelyTyped's compiler
# options for that package, under moduleResolution node16 and node10, with TypeScript 5.x and
# with this project's TypeScript. Exit status: 0 when every compile is clean, 1 otherwise.
set -euo pipefail

file=${1:?usage: scripts/definitelytyped-check.sh FILE (DefinitelyTyped types/express-session/express-session-tests.ts)}
[ -s "$file" ] || { echo "definitelytyped-check: $file is missing or empty" >&2; exit 2; }
grep -q "express-session" "$file" || {
  echo "definitelytyped-check: $file never imports 'express-session'; is it DefinitelyTyped's express-session-tests.ts?" >&2
  exit 2
}
file=$(cd "$(dirname "$file")" && pwd)/$(basename "$file")
root=$(cd "$(dirname "$0")/.." && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/concord-dt-XXXXXX")
trap 'rm -rf "$work"' EXIT

(cd "$root" && npm run --silent build >/dev/null)
tarball=$(cd "$root" && npm pack --silent --pack-destination "$work" | tail -n 1)
cd "$work"
echo '{ "name": "dt-check", "private": true }' > package.json
npm install --silent --prefer-offline --no-audit --no-fund "./$tarball" >/dev/null
# The test imports express, as apps do; its types (and Node's) come from this repository.
mkdir -p node_modules/@types
for t in express express-serve-static-core node; do
  ln -s "$root/node_modules/@types/$t" "node_modules/@types/$t"
done

# Only the module name changes: quoted 'express-session' or "express-session", nothing else.
sed -E "s#(['\"])express-session(['\"])#\1concord-session/express-session\2#g" "$file" \
  > express-session-tests.ts
changed=$(diff "$file" express-session-tests.ts | grep -c '^>' || true)
echo "definitelytyped-check: $(basename "$file"), $changed line(s) changed (the module name only)"

compilers=(
  "TypeScript 5.x:$root/node_modules/typescript5/bin/tsc"
  "this project's TypeScript:$root/node_modules/typescript/bin/tsc"
)
failed=0
for entry in "${compilers[@]}"; do
  name=${entry%%:*}
  tsc=${entry#*:}
  version=$(node "$tsc" --version)
  for resolution in node16 node10; do
    if [ "$resolution" = node16 ]; then
      module=node16
      deprecations=()
    else
      module=commonjs
      # node10 is deprecated (still the default of "module": "commonjs"); say we mean it.
      case "$version" in
        "Version 5."*) deprecations=(--ignoreDeprecations 5.0) ;;
        *) deprecations=(--ignoreDeprecations 6.0) ;;
      esac
    fi
    # DefinitelyTyped's tsconfig for types/express-session, with Node's types for express's.
    if node "$tsc" --noEmit --pretty false \
      --module "$module" --moduleResolution "$resolution" "${deprecations[@]}" \
      --lib es6 --types node --noImplicitAny --noImplicitThis --strictNullChecks \
      --strictFunctionTypes --forceConsistentCasingInFileNames \
      express-session-tests.ts > tsc.out 2>&1; then
      echo "ok    $name ($version), moduleResolution $resolution: 0 errors"
    else
      echo "FAIL  $name ($version), moduleResolution $resolution: $(grep -c 'error TS' tsc.out) error(s)"
      sed 's/^/      /' tsc.out
      failed=1
    fi
  done
done
exit "$failed"
