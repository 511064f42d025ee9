#!/usr/bin/env bash
# Destroys a stack's resources (default: dev). Volumes go too: data is lost.
# `npm run down -- local-k8s` also stops the local cluster (scripts/cluster/stop.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STACK="${1:-dev}"
# shellcheck source=lib/stack-config.sh
source scripts/lib/stack-config.sh
require_stack "$STACK" || exit 2
# shellcheck source=lib/pulumi-env.sh
source scripts/lib/pulumi-env.sh
# The long steps run through run_step (scripts/lib/steps.sh): SIGTERM or SIGHUP stop the step under
# way at once (pulumi destroy cancels as on Ctrl-C); before, bash died at once, set no trap, and the
# destroy went on without it.
# shellcheck source=lib/steps.sh
source scripts/lib/steps.sh
trap 'stop_step INT; exit 130' INT
trap 'stop_step TERM; exit 143' TERM
trap 'stop_step HUP; exit 129' HUP
command -v pulumi >/dev/null 2>&1 || {
  echo "[down] no pulumi CLI (neither in .tools/bin nor on PATH) to destroy stack $STACK with:" \
    "build it first (bash scripts/tools/build-pulumi-tools.sh $STACK; \`npm run up\` builds it too)" >&2
  exit 1
}
if [ "$STACK" = local-k8s ]; then
  # The cluster must run for the destroy (pods terminate on its node, the provisioner deletes the
  # volumes); it is stopped afterwards. A cluster that already answers is used as it is.
  # A loaded machine slows the add-ons' rollout: the destroy needs the API, not a quick start.
  bash scripts/cluster/kubeconfig.sh >/dev/null 2>&1 || K8S_START_TIMEOUT=${K8S_START_TIMEOUT:-900} run_step down bash scripts/cluster/start.sh
  KUBECONFIG=$(bash scripts/cluster/kubeconfig.sh)
  export KUBECONFIG
fi
status=0
config_file=$(stack_config_file "$STACK")
run_step down pulumi destroy --stack "$STACK" --config-file "$config_file" --yes --non-interactive --skip-preview || status=$?
if [ "$STACK" = local-k8s ] && [ "$status" = 0 ]; then
  # The claims of StatefulSets go with the namespace; the provisioner then deletes their volumes
  # (a helper pod): wait for that before the node stops, or their directories stay behind.
  ns=$(sed -n 's/^ *trading:namespace: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "Pulumi.$STACK.yaml")
  kubectl_bin=$(bash -c 'source scripts/cluster/lib.sh && echo "$K8S_BIN/kubectl"')
  left=unknown
  for _ in $(seq 1 150); do
    if claims=$("$kubectl_bin" --kubeconfig "$KUBECONFIG" get pv -o jsonpath='{range .items[*]}{.spec.claimRef.namespace}{"\n"}{end}' 2>/dev/null); then
      left=$(printf '%s\n' "$claims" | grep -cxF -- "${ns:-ai-trading}" || true)
      [ "$left" = 0 ] && break
    fi
    sleep 2
  done
  [ "$left" = 0 ] || echo "[down] $left volume(s) of namespace $ns not deleted by the provisioner after 300 s" >&2
fi
if [ "$STACK" = local-k8s ]; then
  # Stopped even when the destroy failed (run `npm run down -- local-k8s` again to finish it).
  run_step down bash scripts/cluster/stop.sh
  bash scripts/cluster/check-clean.sh || status=1
fi
# shellcheck source=lib/local-images.sh
source scripts/lib/local-images.sh
prune_superseded_images
exit $status
