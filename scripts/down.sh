#!/usr/bin/env bash
# Destroys a stack's resources (default: dev). Volumes go too: data is lost.
# `npm run down -- local-k8s` also stops the local cluster (scripts/cluster/stop.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STACK="${1:-dev}"
# shellcheck source=lib/pulumi-env.sh
source scripts/lib/pulumi-env.sh
# shellcheck source=lib/stack-config.sh
source scripts/lib/stack-config.sh
if [ "$STACK" = local-k8s ]; then
  # The cluster must run for the destroy (pods terminate on its node, the provisioner deletes the
  # volumes); it is stopped afterwards. A cluster that already answers is used as it is.
  # A loaded machine slows the add-ons' rollout: the destroy needs the API, not a quick start.
  bash scripts/cluster/kubeconfig.sh >/dev/null 2>&1 || K8S_START_TIMEOUT=${K8S_START_TIMEOUT:-900} bash scripts/cluster/start.sh
  KUBECONFIG=$(bash scripts/cluster/kubeconfig.sh)
  export KUBECONFIG
fi
status=0
pulumi destroy --stack "$STACK" --config-file "$(stack_config_file "$STACK")" --yes --non-interactive --skip-preview || status=$?
if [ "$STACK" = local-k8s ]; then
  # Stopped even when the destroy failed (run `npm run down -- local-k8s` again to finish it).
  bash scripts/cluster/stop.sh
  bash scripts/cluster/check-clean.sh || status=1
fi
exit $status
