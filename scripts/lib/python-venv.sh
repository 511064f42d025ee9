#!/usr/bin/env bash
# The one implementation of the project's PyPI virtual environments (the training job's, the
# backtrader oracle's, the benchmark anchors'): tests/harness/python.ts and scripts/ml/venv.sh call it.
#
#   scripts/lib/python-venv.sh NAME PIN...               e.g. backtrader backtrader==1.9.78.123
#   scripts/lib/python-venv.sh NAME -r REQUIREMENTS      e.g. ml-train ml/requirements.txt
#
# One venv per (NAME, interpreter version, requirement list) under
#   ${TRADING_CACHE_DIR:-~/.cache/ai-trading}/python/NAME-<key>
# key = first 12 hex of sha256("<python X.Y.Z>\n<requirements sorted, one a line>"); a requirements
# file contributes its non-comment lines (pip options such as --only-binary=:all: included). Built
# in a temp dir and renamed into place under a flock (released by the kernel when its holder dies),
# so concurrent and interrupted runs never see a half-made venv; later runs only print the path.
# Prints the venv's python on the last line of stdout; everything else goes to stderr.
# Env: PYTHON (python3), PYTHON_VENV_WAIT_SECONDS (3600: bound on waiting for another install).
# Exit 3: no Python interpreter at all (callers may skip); other failures exit 1 naming the fix.
set -euo pipefail
log() { echo "[python-venv] $*" >&2; }
usage() { echo "usage: $0 NAME (PIN... | -r REQUIREMENTS_FILE)" >&2; exit 2; }

[ $# -ge 2 ] || usage
NAME=$1; shift
[[ "$NAME" =~ ^[a-z0-9][a-z0-9_.-]*$ ]] || { log "invalid venv name '$NAME'"; exit 2; }
REQS=()
if [ "$1" = "-r" ]; then
  if [ $# -ne 2 ] || [ ! -f "$2" ]; then usage; fi
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line%%#*}"; line="${line#"${line%%[![:space:]]*}"}"; line="${line%"${line##*[![:space:]]}"}"
    [ -z "$line" ] || REQS+=("$line")
  done <"$2"
else
  REQS=("$@")
fi
[ "${#REQS[@]}" -gt 0 ] || { log "no requirements for '$NAME'"; exit 2; }

BASE="${PYTHON:-python3}"
VERSION="$("$BASE" -c "import sys; print('.'.join(map(str, sys.version_info[:3])))" 2>/dev/null)" || {
  log "no Python interpreter ($BASE); install Debian's python3 and python3-venv (scripts/deps/install-test-deps.sh does)"
  exit 3
}
# The same key tests/harness/python.ts computed before it called this script (venvs stay cached).
KEY="$({ printf '%s' "$VERSION"; printf '%s\n' "${REQS[@]}" | LC_ALL=C sort | while IFS= read -r r; do printf '\n%s' "$r"; done; } \
  | sha256sum | cut -c1-12)"
# shellcheck source=cache-dir.sh
source "$(dirname "${BASH_SOURCE[0]}")/cache-dir.sh" || exit 1 # TRADING_CACHE_DIR, or stops naming what to set
ROOT="$TRADING_CACHE_DIR/python"
VENV="$ROOT/$NAME-$KEY"
if [ -f "$VENV/.complete" ]; then echo "$VENV/bin/python"; exit 0; fi

mkdir -p "$ROOT"
exec 9>"$ROOT/.lock-$NAME-$KEY"
if ! flock -n 9; then
  log "waiting for another install of $NAME-$KEY"
  flock -w "${PYTHON_VENV_WAIT_SECONDS:-3600}" 9 || { log "gave up waiting for $ROOT/.lock-$NAME-$KEY"; exit 1; }
fi
if [ -f "$VENV/.complete" ]; then echo "$VENV/bin/python"; exit 0; fi

if ! "$BASE" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  log "$BASE has no venv/ensurepip module: installing python3-venv (apt)"
  # shellcheck source=locks.sh
  source "$(dirname "${BASH_SOURCE[0]}")/locks.sh"
  if ! { apt_get update -qq && apt_get install -y -qq --no-install-recommends python3-venv; }; then
    log "could not install python3-venv (Debian: apt-get install python3-venv)"; exit 1
  fi
fi

started=$(date +%s)
# Holding the lock: leftovers of interrupted installs are ours to remove.
rm -rf "$VENV".tmp-* "$VENV"
TMP="$VENV.tmp-$$"
trap 'rm -rf "$TMP"' EXIT
log "creating $NAME-$KEY (python $VERSION): ${REQS[*]}"
"$BASE" -m venv "$TMP" >&2 || { log "$BASE -m venv failed (Debian: apt-get install python3-venv)"; exit 1; }
# --only-binary: every pin here has a manylinux or pure wheel for this CPython; an sdist build
# (minutes of C/C++ on a loaded machine, and a compiler to need) means a pin to fix, so it fails
# fast instead. --no-compile: pip otherwise byte-compiles every module it installs (the
# bench-anchors venv: 10,053 files, 27 s CPU, 7.5 min wall at load 20 under nice 19); Python
# compiles the few modules a run imports, once, on first import.
"$TMP/bin/python" -m pip install --disable-pip-version-check --no-input --quiet --only-binary=:all: --no-compile "${REQS[@]}" >&2 || {
  log "pip install failed for $NAME (is PyPI reachable? are the pins still published, with a wheel for python $VERSION?)"; exit 1; }
# A venv finds itself from pyvenv.cfg beside bin/python: `python -m ...` works after the rename
# (bin/ scripts keep the temp path in their shebang; call them through python -m).
mv "$TMP" "$VENV"
trap - EXIT
printf '%s\n' "${REQS[@]}" >"$VENV/.complete"
log "ready in $(( $(date +%s) - started ))s: $VENV"
echo "$VENV/bin/python"
