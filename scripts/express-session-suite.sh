#!/usr/bin/env bash
# Runs express-session's own test suite (test/session.js and test/cookie.js) against the built
# drop-in, concord-session/express-session.
#
#   git clone --branch v1.19.0 https://github.com/expressjs/session /tmp/es-suite
#   (cd /tmp/es-suite && npm install)
#   scripts/express-session-suite.sh /tmp/es-suite
#
# DIR is a checkout of expressjs/session with its devDependencies installed. The script builds
# this package, links it into DIR/node_modules, and replaces DIR/index.js and
# DIR/session/cookie.js with one-line re-exports of the drop-in and its Cookie (the originals
# are kept as *.orig and restored at exit). Nothing else in the suite changes; mocha runs with
# the suite's own options. Exit status: mocha's (the number of failing tests).
set -euo pipefail

dir=${1:?usage: scripts/express-session-suite.sh DIR (a checkout of expressjs/session with npm install done)}
dir=$(cd "$dir" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)

for f in index.js session/cookie.js test/session.js test/cookie.js node_modules/.bin/mocha; do
  [ -e "$dir/$f" ] || { echo "express-session-suite: $dir/$f is missing; is DIR a checkout of expressjs/session after npm install?" >&2; exit 2; }
done

(cd "$root" && npm run --silent build)

# The built package, as `require('concord-session/...')` finds it from the suite.
mkdir -p "$dir/node_modules"
rm -rf "$dir/node_modules/concord-session"
ln -s "$root" "$dir/node_modules/concord-session"

restore() {
  for f in index.js session/cookie.js; do
    if [ -e "$dir/$f.orig" ]; then mv -f "$dir/$f.orig" "$dir/$f"; fi
  done
  rm -f "$dir/node_modules/concord-session"
}
trap restore EXIT

for f in index.js session/cookie.js; do
  [ -e "$dir/$f.orig" ] || cp "$dir/$f" "$dir/$f.orig"
done
echo "module.exports = require('concord-session/express-session')" > "$dir/index.js"
echo "module.exports = require('concord-session/express-session').Cookie" > "$dir/session/cookie.js"

cd "$dir"
mkdir -p test/fixtures
# The suite's HTTPS tests need a self-signed certificate (its npm test script makes one too).
if [ ! -s test/fixtures/server.crt ]; then
  openssl req -x509 -nodes -newkey rsa:2048 -keyout test/fixtures/server.key -out test/fixtures/server.crt -days 3650 \
    -subj "/C=US/ST=Illinois/L=Chicago/O=node-express-session/CN=express-session.local" 2>/dev/null
fi
node_modules/.bin/mocha --require test/support/env --check-leaks --no-exit --reporter "${MOCHA_REPORTER:-spec}" test/session.js test/cookie.js
