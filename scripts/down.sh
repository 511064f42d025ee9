#!/usr/bin/env bash
# Destroys a stack's resources (default: dev). Volumes go too: data is lost.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STACK="${1:-dev}"
# shellcheck source=lib/pulumi-env.sh
source scripts/lib/pulumi-env.sh
pulumi destroy --stack "$STACK" --yes --non-interactive --skip-preview
