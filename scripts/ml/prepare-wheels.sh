#!/usr/bin/env bash
# Fills ml/.wheels (git-ignored) with the wheels of ml/requirements.txt and their dependencies for
# the trainer image's Python (Debian bookworm's python3 3.11, x86_64 glibc), so the trainer build
# (ml/Dockerfile, built by the Pulumi program or scripts/ml/build-image.sh) installs with no network
# inside docker build. Downloaded once per requirements hash into
#   ${TRADING_CACHE_DIR:-~/.cache/ai-trading}/ml-wheels/<key>/   (ml/.wheels is a hard-linked copy)
# with the pip of a small venv made by scripts/lib/python-venv.sh. Like the npm cache of the
# services image (services/scripts/prepare-npm-cache.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REQ="$ROOT/ml/requirements.txt"
# The trainer's interpreter: Debian bookworm's python3 (ml/Dockerfile checks it is this version).
PY_VERSION=3.11
TARGET=(--python-version "$PY_VERSION" --implementation cp --abi "cp${PY_VERSION/./}"
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
        --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64)
KEY="$({ cat "$REQ"; echo "${TARGET[*]}"; } | sha256sum | cut -c1-16)"
# shellcheck source=../lib/cache-dir.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cache-dir.sh" || exit 1 # TRADING_CACHE_DIR, or stops naming what to set
CACHE="$TRADING_CACHE_DIR/ml-wheels"
DIR="$CACHE/$KEY"
log() { echo "[ml-wheels] $*" >&2; }

if [ ! -f "$DIR/.complete" ]; then
  # shellcheck source=../lib/locks.sh
  source "$ROOT/scripts/lib/locks.sh"
  hold_lock "ml-wheels-$KEY"
  if [ ! -f "$DIR/.complete" ]; then
    started=$(date +%s)
    PIP_PY="$(bash "$ROOT/scripts/lib/python-venv.sh" pip-download pip==25.0.1 | tail -n1)"
    rm -rf "$DIR" "$DIR.tmp"; mkdir -p "$DIR.tmp"
    log "downloading the wheels of ml/requirements.txt for CPython $PY_VERSION x86_64"
    "$PIP_PY" -m pip download --disable-pip-version-check --no-input --quiet --only-binary=:all: "${TARGET[@]}" \
      -r "$REQ" -d "$DIR.tmp" >&2
    mv "$DIR.tmp" "$DIR"
    date -u +%FT%TZ >"$DIR/.complete"
    log "cached in $(( $(date +%s) - started ))s: $DIR ($(du -sh "$DIR" | cut -f1))"
  fi
fi
rm -rf "$ROOT/ml/.wheels"
mkdir -p "$ROOT/ml/.wheels"
cp -al "$DIR"/*.whl "$ROOT/ml/.wheels/" 2>/dev/null || cp "$DIR"/*.whl "$ROOT/ml/.wheels/"
wheels=("$ROOT"/ml/.wheels/*.whl)
log "ml/.wheels ready (${#wheels[@]} wheels)"
