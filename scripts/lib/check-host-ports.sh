#!/usr/bin/env bash
# check-host-ports.sh <stack>: `npm run up`'s check, before the builds, that the host ports the
# Docker stack publishes are free or held by its own containers (scripts/lib/host-ports.ts, which
# reads them from the stack's configuration). Needs the clone's npm packages (tsx, yaml).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
[ -x "$ROOT/node_modules/.bin/tsx" ] || {
  echo "[up] no $ROOT/node_modules/.bin/tsx to check the host ports with: run bash scripts/lib/npm-install.sh (npm run up does it first)" >&2
  exit 1
}
exec "$ROOT/node_modules/.bin/tsx" "$ROOT/scripts/lib/host-ports.ts" "$1"
