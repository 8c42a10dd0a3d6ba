#!/usr/bin/env bash
# Runs CI as a new machine would: a clean clone of a branch (default: main) into a temp dir,
# an empty npm cache, then `CI=true bash .ci/run`. Catches what a warm cache or a dirty work
# tree hides, such as a lockfile without other platforms' optional bindings.
#
#   scripts/ci-fresh.sh            # clone main of this repository
#   scripts/ci-fresh.sh my-branch  # or another branch
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
branch="${1:-main}"
work="$(mktemp -d -t concord-ci-XXXXXX)"
trap 'rm -rf "$work"' EXIT

git clone --quiet --branch "$branch" "file://$repo" "$work/clone"
export npm_config_cache="$work/npm-cache"
cd "$work/clone"
echo "ci-fresh: $(git log -1 --format='%h %s') in $work/clone, empty npm cache"
start=$(date +%s)
set +e
CI=true bash .ci/run </dev/null
status=$?
set -e
echo "ci-fresh: .ci/run exited $status after $(( $(date +%s) - start )) s"
exit $status
