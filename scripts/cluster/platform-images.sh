#!/usr/bin/env bash
# The platform's images for the local cluster, built on the local Docker engine and imported into
# the node by start.sh (docker save | ctr import): the Debian-based datastore/monitoring images
# (scripts/images/build-images.sh), the services image and the trainer built on it, tagged as the local-k8s stack references
# it (localhost/ai-trading/services:<trading:servicesImageTag, default the services package version>).
# On Kubernetes the program does not build the services image itself when trading:imageSource is
# local: a node cannot see the Docker engine's images, so they are built here and imported.
#   bash scripts/cluster/platform-images.sh [--import]   # --import: also into a running node
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../lib/local-images.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/local-images.sh"
cd "$ROOT"
bash scripts/docker/ensure-dockerd.sh
bash scripts/images/build-images.sh
tag=$(sed -n 's/^ *trading:servicesImageTag: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' Pulumi.local-k8s.yaml 2>/dev/null)
tag=${tag:-$(node -p "require('./services/package.json').version")}
node_tag=$(node -p "require('./images/versions.json').node")
NODE_IMAGE="$(local_image "node:$node_tag")" bash services/scripts/build-image.sh "$(local_image "services:$tag")"
# ml-predictor's retraining CronJob runs the trainer, built FROM that services image.
SERVICES_IMAGE="$(local_image "services:$tag")" bash scripts/ml/build-image.sh "$(local_image "trainer:$tag")"
if [ "${1:-}" = --import ]; then bash "$CLUSTER_DIR/start.sh" --import-images-only; fi
