#!/usr/bin/env bash
# Builds the trainer image (ml/Dockerfile, context ml/) outside the Pulumi program, e.g. for the
# local Kubernetes cluster (scripts/cluster/platform-images.sh imports it into the node), with no
# PyPI access inside the build: scripts/ml/prepare-wheels.sh first stages the wheels in ml/.wheels.
# Usage: scripts/ml/build-image.sh [tag]   (default localhost/ai-trading/trainer:<services package version>)
#   SERVICES_IMAGE (default localhost/ai-trading/services:<services package version>; build it first with
#   services/scripts/build-image.sh), DOCKER_BUILDKIT=0 by default (like the other images).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=../lib/local-images.sh
source "$ROOT/scripts/lib/local-images.sh"
version="$(node -p "require('$ROOT/services/package.json').version")"
tag="${1:-$(local_image "trainer:$version")}"
services_image="${SERVICES_IMAGE:-$(local_image "services:$version")}"
docker image inspect "$services_image" >/dev/null 2>&1 || {
  echo "base image $services_image missing: run services/scripts/build-image.sh first" >&2; exit 1; }
bash "$ROOT/scripts/ml/prepare-wheels.sh"
make_readable "$ROOT/ml/trading_ml" # read by the trainer's uid 10001
DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}" docker build --build-arg "SERVICES_IMAGE=$services_image" -t "$tag" "$ROOT/ml"
echo "built $tag ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
