#!/usr/bin/env bash
# Destroys a stack's resources (default: dev). Volumes go too: data is lost.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STACK="${1:-dev}"
# shellcheck source=lib/pulumi-env.sh
source scripts/lib/pulumi-env.sh
# shellcheck source=lib/stack-config.sh
source scripts/lib/stack-config.sh
pulumi destroy --stack "$STACK" --config-file "$(stack_config_file "$STACK")" --yes --non-interactive --skip-preview
