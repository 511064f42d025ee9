#!/usr/bin/env bash
# Installs the three npm packages of the repo (program, services, policies) from their lockfiles.
# Install scripts run only where package.json's allowScripts approves them (none of @pulumi/*).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Two runs in the same tree (`npm test` and `npm run up` started at once) would each delete the
# other's node_modules: the second waits for the first, then finds everything installed.
# shellcheck source=locks.sh
source "$ROOT/scripts/lib/locks.sh"
hold_lock "npm-install-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
for dir in "$ROOT" "$ROOT/services" "$ROOT/policies"; do
  [ -f "$dir/package.json" ] || continue
  stamp="$dir/node_modules/.installed-lock-hash"
  hash="$(sha256sum "$dir/package-lock.json" 2>/dev/null | cut -d' ' -f1)"
  # Reinstall only when the lockfile changed: CI on the same machine reuses node_modules.
  if [ -n "$hash" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
    continue
  fi
  echo "[npm-install] npm ci in ${dir#"$ROOT/"}" >&2
  # Its exit status decides, not whether node_modules exists: a failed `npm ci` (registry out of
  # reach, disk full, interrupted) can leave a partial tree, which the stamp must never mark as
  # installed (before, it did: every later run skipped the install until the lockfile changed).
  rm -f "$stamp"
  if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error 2>&1) | { grep -v 'Unknown user config "nodedir"' || true; }; then
    echo "[npm-install] npm ci failed in $dir (its output is above): node_modules there is incomplete;" \
      "fix the cause (is the npm registry reachable? is the disk full?) and run again, it reinstalls" >&2
    exit 1
  fi
  [ -d "$dir/node_modules" ] || { echo "[npm-install] npm ci failed in $dir: it made no node_modules" >&2; exit 1; }
  echo "$hash" > "$stamp"
done
