#!/usr/bin/env bash
# Builds the Weaviate server from the Go module proxy (no GitHub, no Docker Hub), cached outside
# the clone and keyed by version:
#   ${TRADING_CACHE_DIR:-$HOME/.cache/ai-trading}/weaviate/
#     <version>/bin/weaviate-server   static binary (CGO_ENABLED=0), with .complete next to bin/
#     go/{mod,build}                  GOMODCACHE / GOCACHE (~2 GB, shared across versions)
#
#   bash scripts/weaviate/build.sh            # idempotent: a warm cache only prints the path
#   WEAVIATE_VERSION=v1.35.2 bash scripts/weaviate/build.sh
#
# Prints the binary's path on the last line of stdout. Concurrent runs (CI, test workers, the image
# build) wait for each other on a lock. Cold build measured here: ~11 min wall under load (see
# README "Weaviate"). Go comes from /usr/local/go or PATH; go.mod's toolchain line is honoured
# (GOTOOLCHAIN=auto fetches a newer Go from the proxy when needed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=versions.env
source "$ROOT/scripts/weaviate/versions.env"
VERSION="${WEAVIATE_VERSION:-$WEAVIATE_DEFAULT_VERSION}"
# shellcheck source=../lib/cache-dir.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cache-dir.sh" || exit 1 # TRADING_CACHE_DIR, or stops naming what to set
CACHE="$TRADING_CACHE_DIR/weaviate"
DEST="$CACHE/$VERSION"
BIN="$DEST/bin/weaviate-server"
log() { echo "[weaviate-build] $*" >&2; }

if [ -f "$DEST/.complete" ] && [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
# WEAVIATE_CACHED_ONLY=1: only say whether it is cached (exit 1 when not), build nothing.
if [ "${WEAVIATE_CACHED_ONLY:-}" = 1 ]; then exit 1; fi
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock-$VERSION"
# shellcheck source=../lib/locks.sh
source "$ROOT/scripts/lib/locks.sh"
wait_for_lock 9 "$CACHE/.lock-$VERSION" "another build of the Weaviate server $VERSION"
if [ -f "$DEST/.complete" ] && [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi

# shellcheck source=../lib/go.sh
source "$ROOT/scripts/lib/go.sh"
find_go || exit 1
export GOPATH="$CACHE/go" GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build"
export GOTOOLCHAIN=auto CGO_ENABLED=0 GOFLAGS=-buildvcs=false
unset GOWORK || true

started=$(date +%s)
log "building github.com/weaviate/weaviate@$VERSION with $(go version | awk '{print $3}') (cache $CACHE)"
WORK="$(mktemp -d)"
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
# `go mod download` needs a module context; an empty throwaway one is enough.
(cd "$WORK" && go mod init weaviate-fetch >/dev/null 2>&1)
SRC_RO=$(cd "$WORK" && go mod download -json "github.com/weaviate/weaviate@$VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
[ -n "$SRC_RO" ] || { log "the proxy did not serve github.com/weaviate/weaviate@$VERSION"; exit 1; }
# The module cache is read-only; the build wants a writable tree.
cp -r "$SRC_RO" "$WORK/src" && chmod -R u+w "$WORK/src"
(cd "$WORK/src" && nice -n 10 go mod download)
log "modules ready (+$(( $(date +%s) - started ))s); compiling"
rm -rf "$DEST.tmp"; mkdir -p "$DEST.tmp/bin"
(cd "$WORK/src" && nice -n 10 go build -trimpath -ldflags="-s -w" -o "$DEST.tmp/bin/weaviate-server" ./cmd/weaviate-server)
echo "$VERSION built in $(( $(date +%s) - started ))s on $(date -u +%FT%TZ)" >"$DEST.tmp/.complete"
rm -rf "$DEST"; mv "$DEST.tmp" "$DEST"
log "ready: $BIN ($(du -h "$BIN" | cut -f1), $(( $(date +%s) - started ))s)"
echo "$BIN"
