#!/usr/bin/env bash
# Fills services/.npm-cache (gitignored) with every package of services/package-lock.json, so that
# the services image build (services/Dockerfile from the repository root, also what the Pulumi
# program builds) installs with no network access inside the build. The persistent copy lives in
# ${TRADING_CACHE_DIR:-~/.cache/ai-trading}/npm-services; services/.npm-cache is a hard-linked copy.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=../../scripts/lib/cache-dir.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/cache-dir.sh" || exit 1 # TRADING_CACHE_DIR, or stops naming what to set
cache="$TRADING_CACHE_DIR/npm-services"
mkdir -p "$cache"
# One writer at a time in the shared cache (several clones, CI).
# shellcheck source=../../scripts/lib/locks.sh
source "$here/../scripts/lib/locks.sh"
hold_lock npm-services-cache
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$tmp/"
(cd "$tmp" && npm ci --cache "$cache" --prefer-offline --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
rm -rf "$here/.npm-cache"
cp -al "$cache" "$here/.npm-cache" 2>/dev/null || cp -r "$cache" "$here/.npm-cache"
rm -rf "$here/.npm-cache/_logs"
echo "[prepare-npm-cache] $here/.npm-cache ready ($(du -sh "$here/.npm-cache" | cut -f1))"
