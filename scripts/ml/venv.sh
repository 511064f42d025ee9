#!/usr/bin/env bash
# The training job's Python environment (ml/requirements.txt, PyPI wheels), created once per
# requirements hash outside the clone:
#   ${TRADING_CACHE_DIR:-$HOME/.cache/ai-trading}/ml-venv/<sha256 of requirements.txt, 16 hex>/
# Prints the venv's python on the last line of stdout. Idempotent and concurrency-safe (lock).
# Needs python3 with venv (Debian: python3-venv, installed with apt when missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REQ="$ROOT/ml/requirements.txt"
KEY="$(sha256sum "$REQ" | cut -c1-16)"
CACHE="${TRADING_CACHE_DIR:-$HOME/.cache/ai-trading}/ml-venv"
VENV="$CACHE/$KEY"
log() { echo "[ml-venv] $*" >&2; }
if [ -f "$VENV/.complete" ]; then echo "$VENV/bin/python"; exit 0; fi
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock-$KEY"
flock 9
if [ -f "$VENV/.complete" ]; then echo "$VENV/bin/python"; exit 0; fi
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  log "installing python3-venv (apt)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends python3-venv >/dev/null
fi
started=$(date +%s)
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: -r "$REQ" >&2
date -u +%FT%TZ >"$VENV/.complete"
log "ready in $(( $(date +%s) - started ))s: $VENV"
echo "$VENV/bin/python"
