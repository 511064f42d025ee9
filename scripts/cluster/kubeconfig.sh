#!/usr/bin/env bash
# Prints the path of the local cluster's admin kubeconfig (exit 1 when no apiserver answers).
#   export KUBECONFIG=$(bash scripts/cluster/kubeconfig.sh)
# Tests use the same path: ${TRADING_CACHE_DIR:-$HOME/.cache/ai-trading}/k8s/run/pki/admin.kubeconfig
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ -f "$KUBECONFIG_PATH" ] || { echo "no local cluster kubeconfig at $KUBECONFIG_PATH (run scripts/cluster/start.sh)" >&2; exit 1; }
curl -fsS --max-time 20 --cacert "$PKI_DIR/ca.crt" "https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null 2>&1 ||
  { echo "the local apiserver does not answer on 127.0.0.1:$APISERVER_PORT (run scripts/cluster/start.sh)" >&2; exit 1; }
echo "$KUBECONFIG_PATH"
