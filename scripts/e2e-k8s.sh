#!/usr/bin/env bash
# The platform on a real single-node Kubernetes cluster, from a fresh machine: the cluster tools
# (scripts/cluster/build.sh, cached), the Pulumi toolchain, the local images (Docker, Debian), the
# cluster started with those images imported, then the suite tests/e2e-k8s (`pulumi up` of the
# local-k8s stack and the checks of issue 16), then the cluster stopped and the host checked clean.
#   npm run e2e:k8s                   # everything
#   K8S_E2E_KEEP_CLUSTER=1 npm run e2e:k8s   # leave the cluster running afterwards
# Prints the time of each step.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
started=$(date +%s)
declare -A took
order=()
# Each step runs through run_step (scripts/lib/steps.sh): SIGTERM or SIGHUP to the run stops the
# step under way at once, and a cluster this run started is stopped as after a failed start (unless
# K8S_E2E_KEEP_CLUSTER=1). Before, bash died at once, set no trap, and left the step and the cluster
# running without it.
# shellcheck source=lib/steps.sh
source scripts/lib/steps.sh
cluster_started=""
# shellcheck disable=SC2317 # run by the traps below; shellcheck 0.9.0 calls it unreachable as the script ends in exit (koalaman/shellcheck#2542)
interrupted() {
  stop_step "$1"
  if [ -n "$cluster_started" ] && [ "${K8S_E2E_KEEP_CLUSTER:-0}" != 1 ]; then
    cluster_started=""
    echo "[e2e-k8s] interrupted: stopping the cluster this run started" >&2
    bash scripts/cluster/stop.sh || true
  fi
}
trap 'interrupted INT; exit 130' INT
trap 'interrupted TERM; exit 143' TERM
trap 'interrupted HUP; exit 129' HUP
step() {
  local name=$1; shift
  local t0 rc=0; t0=$(date +%s)
  echo "[e2e-k8s] $name" >&2
  run_step e2e-k8s "$@" || rc=$?
  took[$name]=$(( $(date +%s) - t0 )); order+=("$name")
  echo "[e2e-k8s] $name took ${took[$name]}s" >&2
  return $rc
}

step "cluster tools" bash scripts/cluster/build.sh
step "docker engine" bash scripts/docker/ensure-dockerd.sh
step "npm packages" bash scripts/lib/npm-install.sh
step "pulumi toolchain" bash scripts/tools/build-pulumi-tools.sh
step "local images" bash scripts/cluster/platform-images.sh
# A start that fails half way (a daemon up, an add-on not rolled out) is stopped again: a failed
# run leaves nothing running on the host, as a finished one does.
cluster_started=1 # a start stopped half way leaves daemons to stop too
if ! step "cluster start" bash scripts/cluster/start.sh; then
  [ "${K8S_E2E_KEEP_CLUSTER:-0}" = 1 ] || step "cluster stop" bash scripts/cluster/stop.sh || true
  echo "[e2e-k8s] the cluster did not start (see above); total $(( $(date +%s) - started ))s, exit 1" >&2
  exit 1
fi
set +e
step "e2e suite" npx --no-install vitest run --config vitest.e2e-k8s.config.ts "$@"
status=$?
if [ "${K8S_E2E_KEEP_CLUSTER:-0}" != 1 ]; then
  step "cluster stop" bash scripts/cluster/stop.sh
  cluster_started=""
  step "host left clean" bash scripts/cluster/check-clean.sh || status=1
fi
set -e
echo "[e2e-k8s] timings:" >&2
for k in "${order[@]}"; do printf '[e2e-k8s]   %-20s %5ss\n' "$k" "${took[$k]}" >&2; done
echo "[e2e-k8s] total $(( $(date +%s) - started ))s, exit $status" >&2
exit $status
