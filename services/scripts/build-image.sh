#!/usr/bin/env bash
# Builds the services image with services/Dockerfile from the repository root (the services compile
# the shared catalog/; the root .dockerignore sends only services/ and catalog/), with no network
# access inside the build: scripts/prepare-npm-cache.sh first fills services/.npm-cache.
# Usage: services/scripts/build-image.sh [tag]   (default localhost/ai-trading/services:<package version>)
#   NODE_IMAGE (default localhost/ai-trading/node:20), DOCKER_BUILDKIT=0 by default (like scripts/images).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/.." && pwd)"
version="$(node -p "require('$here/package.json').version")"
# shellcheck source=../../scripts/lib/local-images.sh
source "$root/scripts/lib/local-images.sh"
tag="${1:-$(local_image "services:$version")}"
node_image="${NODE_IMAGE:-$(local_image node:20)}"
docker image inspect "$node_image" >/dev/null 2>&1 || {
  echo "base image $node_image missing: run scripts/images/build-images.sh node" >&2; exit 1; }
bash "$here/scripts/prepare-npm-cache.sh"
# What the runtime stage's uid 10001 reads from the context: package.json, the migrations (src/**/*.sql).
make_readable "$here/package.json" "$here/src"
DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}" docker build --build-arg "NODE_IMAGE=$node_image" -f "$here/Dockerfile" -t "$tag" "$root"
echo "built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
