#!/usr/bin/env bash
# Builds the services image (services/Dockerfile) without network access inside the build:
# the npm packages of package-lock.json are fetched on the host into an npm cache (persistent in
# ${TRADING_CACHE_DIR:-~/.cache/ai-trading}/npm-services), which is copied into a temporary build
# context; the Dockerfile installs with `npm ci --offline` from it.
# Usage: services/scripts/build-image.sh [tag]   (default ai-trading/services:<version>)
#   NODE_IMAGE=ai-trading/node:20 (base), DOCKER_BUILDKIT=0 by default (like scripts/images).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
version="$(node -p "require('$here/package.json').version")"
tag="${1:-ai-trading/services:$version}"
node_image="${NODE_IMAGE:-ai-trading/node:20}"
cache="${TRADING_CACHE_DIR:-$HOME/.cache/ai-trading}/npm-services"

docker image inspect "$node_image" >/dev/null 2>&1 || {
  echo "base image $node_image missing: run scripts/images/build-images.sh node" >&2; exit 1; }

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$cache" "$ctx/fill"
cp "$here/package.json" "$here/package-lock.json" "$ctx/fill/"
(cd "$ctx/fill" && npm ci --cache "$cache" --prefer-offline --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
cp -r "$here/package.json" "$here/package-lock.json" "$here/tsconfig.json" "$here/src" "$here/Dockerfile" "$here/.dockerignore" "$ctx/"
cp -r "$cache" "$ctx/.npm-cache"
rm -rf "$ctx/fill"
DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}" docker build --build-arg "NODE_IMAGE=$node_image" -t "$tag" "$ctx"
echo "built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
