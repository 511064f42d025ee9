#!/usr/bin/env bash
# Builds actionlint (the GitHub Actions workflow linter) from the Go module proxy and prints the
# path of the binary. Cached outside the clone in
# ${TRADING_CACHE_DIR:-~/.cache/ai-trading}/actionlint/<version>/actionlint (a second run takes
# milliseconds); the Go module and build caches are shared with the Pulumi toolchain build.
# Concurrent runs wait on one lock (scripts/lib/locks.sh) and reuse the first one's binary.
#
#   bash scripts/tools/build-actionlint.sh            # prints the binary's path (stdout, last line)
#   ACTIONLINT_VERSION=v1.7.12 bash scripts/tools/build-actionlint.sh
#
# Exit 2 (and a message naming the cause) when there is no Go toolchain: callers may skip then.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../lib/locks.sh
source "$ROOT/scripts/lib/locks.sh"

VERSION=${ACTIONLINT_VERSION:-v1.7.12}
# shellcheck source=../lib/cache-dir.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cache-dir.sh" || exit 1 # TRADING_CACHE_DIR, or stops naming what to set
CACHE_DIR=$TRADING_CACHE_DIR
OUT_DIR=$CACHE_DIR/actionlint/$VERSION
BIN=$OUT_DIR/actionlint

if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
# shellcheck source=../lib/go.sh
source "$ROOT/scripts/lib/go.sh"
find_go || { echo "[actionlint] cannot build actionlint $VERSION without a usable Go (above)" >&2; exit 2; }

hold_lock "actionlint-$VERSION"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi   # built by the run we waited for

mkdir -p "$OUT_DIR"
export GOMODCACHE=$CACHE_DIR/pulumi-tools/go/mod
export GOCACHE=$CACHE_DIR/pulumi-tools/go/build
export GOTOOLCHAIN=auto CGO_ENABLED=0 GOFLAGS=-buildvcs=false
tmp=$(mktemp -d "$OUT_DIR/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "[actionlint] building github.com/rhysd/actionlint/cmd/actionlint@$VERSION from the Go module proxy (once, ~1-3 min; log: $OUT_DIR/build.log)" >&2
started=$(date +%s)
if ! GOBIN=$tmp nice -n 10 go install "github.com/rhysd/actionlint/cmd/actionlint@$VERSION" >"$OUT_DIR/build.log" 2>&1; then
  tail -20 "$OUT_DIR/build.log" >&2
  echo "[actionlint] build failed" >&2
  exit 1
fi
mv "$tmp/actionlint" "$BIN"
echo "[actionlint] built in $(( $(date +%s) - started ))s" >&2
echo "$BIN"
