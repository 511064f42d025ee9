#!/usr/bin/env bash
# Fills services/.npm-cache (gitignored) with every package of services/package-lock.json, so that
# the services image build (services/Dockerfile from the repository root, also what the Pulumi
# program builds) installs with no network access inside the build. The persistent copy lives in
# ${TRADING_CACHE_DIR:-~/.cache/ai-trading}/npm-services; services/.npm-cache is a copy
# (its packages hard-linked, its index not: below).
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
# The index is copied, not linked: npm appends to its bucket files in place (every `npm ci` above,
# another clone's included), so a hard-linked index changed under this clone's build context and the
# next `pulumi preview` wanted to rebuild the services image (the e2e's second preview, session 44, as
# `npm run e2e:k8s` ran in another clone). The packages (content-v2) are written to a new file and
# renamed, never changed in place: linking them is safe, and they are the bulk (172 of 178 MB).
if [[ -d "$cache/_cacache/index-v5" ]]; then
	rm -rf "$here/.npm-cache/_cacache/index-v5"
	cp -r "$cache/_cacache/index-v5" "$here/.npm-cache/_cacache/index-v5"
fi
echo "[prepare-npm-cache] $here/.npm-cache ready ($(du -sh "$here/.npm-cache" | cut -f1))"
