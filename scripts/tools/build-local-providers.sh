#!/usr/bin/env bash
# Builds this repo's own provider plugins (tools/providers/{random,docker}) into <repo>/.tools/bin:
#   pulumi-resource-random  (reports 4.21.2; RandomPassword, RandomBytes)
#   pulumi-resource-docker  (reports 5.2.0; Network, Volume, RemoteImage, Image, Container)
# They stand in for the upstream plugins, whose provider modules the Go proxy does not serve.
#
#   bash scripts/tools/build-local-providers.sh           # idempotent; up to date: well under a second
#   bash scripts/tools/build-local-providers.sh docker    # only the named ones
#   bash scripts/tools/build-local-providers.sh --check random   # exit 0 when up to date, build nothing
#
# A binary is rebuilt when the hash of its sources changes: every file of its module, of the
# shared tools/providers/pluginkit module and this script (names and contents), kept next to it in
# <bin>.srchash. A hash, not mtimes: a deleted file, a checkout or a copy that keeps old times
# still rebuild, and an untouched tree never does. LOCAL_PROVIDERS_FORCE=1 rebuilds. GOMODCACHE/GOCACHE are shared with build-pulumi-tools.sh under
# ${TRADING_CACHE_DIR:-$HOME/.cache/ai-trading}/pulumi-tools/go (outside the clone).
# LOCAL_PROVIDERS_TEST=1 also runs each module's `go test ./...` before building.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
BIN_DIR=$ROOT/.tools/bin
# shellcheck source=../lib/cache-dir.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cache-dir.sh" || exit 1 # TRADING_CACHE_DIR, or stops naming what to set
CACHE_DIR=$TRADING_CACHE_DIR
GO_CACHE=$CACHE_DIR/pulumi-tools/go
mkdir -p "$BIN_DIR" "$GO_CACHE"

export GOPATH=$GO_CACHE
export GOMODCACHE=$GO_CACHE/mod
export GOCACHE=$GO_CACHE/build
export GOTOOLCHAIN=auto
export CGO_ENABLED=0
export GOFLAGS=-buildvcs=false
unset GOWORK || true

log() { printf '[local-providers] %s\n' "$*" >&2; }

# source_hash PATH...: sha256 over the relative names and contents of each file PATH and of the
# files under each directory PATH.
source_hash() {
	local p
	for p in "$@"; do
		if [[ -d "$p" ]]; then
			(cd "$p" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
		else
			sha256sum <"$p"
		fi
	done | sha256sum | cut -d' ' -f1
}

# shellcheck source=../lib/go.sh
source "$ROOT/scripts/lib/go.sh"
find_go || exit 1

CHECK_ONLY=0
if [[ "${1:-}" == --check ]]; then
	CHECK_ONLY=1
	shift
fi
names=("$@")
((${#names[@]})) || names=(random docker)
# A build killed half way (Ctrl-C, SIGKILL, the OOM killer) leaves its <bin>.tmp.<pid>: one whose
# run is gone is removed (before, each stayed in .tools/bin for good, tens of MB each).
for t in "$BIN_DIR"/pulumi-resource-*.tmp.*; do
	if [[ -e "$t" ]] && ! kill -0 "${t##*.}" 2>/dev/null; then
		log "removing $t (left by an interrupted build)"
		rm -f "$t"
	fi
done

for name in "${names[@]}"; do
	src=$ROOT/tools/providers/$name
	bin=$BIN_DIR/pulumi-resource-$name
	[[ -f "$src/go.mod" ]] || {
		log "ERROR: no module at $src"
		exit 1
	}
	hash=$(source_hash "$src" "$ROOT/tools/providers/pluginkit" "$SCRIPT_DIR/build-local-providers.sh")
	if [[ "${LOCAL_PROVIDERS_FORCE:-0}" != 1 && -x "$bin" && "$(cat "$bin.srchash" 2>/dev/null)" == "$hash" ]]; then
		log "pulumi-resource-$name: up to date"
		continue
	fi
	((CHECK_ONLY == 0)) || exit 1
	t0=$(date +%s%N)
	if [[ "${LOCAL_PROVIDERS_TEST:-0}" == 1 ]]; then
		(cd "$src" && go test ./...)
	fi
	# Build next to the target, then rename: a running engine never sees a half-written binary.
	(cd "$src" && go build -trimpath -ldflags "-s -w" -o "$bin.tmp.$$" .)
	# The committed schema (read by tests/unit/provider-inputs.test.ts) must be this binary's.
	if [[ -f "$src/schema.json" ]] && ! "$bin.tmp.$$" -schema | cmp -s - "$src/schema.json"; then
		rm -f "$bin.tmp.$$"
		log "ERROR: tools/providers/$name/schema.json is not the provider's schema: run 'UPDATE_SCHEMA=1 go test ./...' in tools/providers/$name and commit it"
		exit 1
	fi
	mv -f "$bin.tmp.$$" "$bin"
	echo "$hash" >"$bin.srchash"
	log "pulumi-resource-$name: built in $(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')s -> $bin"
done
