#!/usr/bin/env bash
# Brings up a stack (default: dev, on the local Docker engine) from a fresh machine:
# Docker engine, npm packages, the Pulumi CLI and plugins (built from Go modules unless a pulumi
# is installed), the local Debian images, then `pulumi up` with the policy pack enforced.
# State lives in a local file backend (.pulumi-state/, git-ignored) unless PULUMI_BACKEND_URL is set.
#
#   npm run up                 the dev stack
#   npm run up -- prod         another stack (Kubernetes needs a kubeconfig)
#   npm run up -- local-k8s    the local single-node Kubernetes cluster (scripts/cluster/): built,
#                              started with the platform's images imported, then deployed to
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STACK="${1:-dev}"
started=$(date +%s)
step() { echo "[up] $* (+$(( $(date +%s) - started ))s)" >&2; }

# shellcheck source=lib/stack-config.sh
source scripts/lib/stack-config.sh
require_stack "$STACK" || exit 2
# shellcheck source=lib/node-version.sh
source scripts/lib/node-version.sh
require_node || exit 2
policy_config=$(policy_config_of "$STACK") || exit 2
# The offline Pulumi environment now, not after the builds: a stack whose passphrase is missing or
# another one (scripts/lib/pulumi-env.sh) stops the run here, not 30 minutes in.
# shellcheck source=lib/pulumi-env.sh
source scripts/lib/pulumi-env.sh
target=$(sed -n 's/^ *trading:target: *"\{0,1\}\([a-z]*\).*/\1/p' "Pulumi.$STACK.yaml" | head -n1)
# A cluster of one's own (prod) is reached through a kubeconfig: without one, say so now, not after
# the 30-minute Kubernetes provider build, when `pulumi up` finds no cluster.
if [ "$target" = kubernetes ] && [ "$STACK" != local-k8s ] && [ -z "${KUBERNETES_SERVICE_HOST:-}" ] &&
  ! grep -qE '^ *kubernetes:kubeconfig:' "Pulumi.$STACK.yaml"; then
  kubeconfigs=()
  IFS=: read -r -a kubeconfigs <<<"${KUBECONFIG:-${HOME:-}/.kube/config}"
  found=""
  for k in "${kubeconfigs[@]}"; do [ ! -f "$k" ] || found=$k; done
  [ -n "$found" ] || {
    echo "[up] stack $STACK deploys to a Kubernetes cluster and there is no kubeconfig to reach it" \
      "(${KUBECONFIG:+KUBECONFIG=$KUBECONFIG: no such file}${KUBECONFIG:-KUBECONFIG unset, no ${HOME:-~}/.kube/config}):" \
      "export KUBECONFIG=<that cluster's kubeconfig> and run again (this machine's own cluster: npm run up -- local-k8s)" >&2
    exit 2
  }
fi

if [ "$target" = docker ]; then
  step "Docker engine"
  bash scripts/docker/ensure-dockerd.sh
fi
# The local images (debootstrap, apt, the Weaviate server's Go build) need neither npm nor Pulumi:
# on a fresh machine they build while the Pulumi toolchain compiles, which is the longest step
# (they start after the npm packages and the host-port check, below).
# Their lines carry [build-images], the toolchain's [pulumi-tools].
# A run that stops before waiting for them (a later step failed, Ctrl-C, SIGTERM, a closed terminal)
# stops that build and everything it started, said on stderr: before, it went on alone (a background
# job of a script ignores Ctrl-C), and the next run waited for it on the clone's images lock. It runs
# in its own process group (set -m), so only this run's build is stopped: another run's, which ours
# may be waiting for on that lock, goes on. What a stopped build leaves, the next one cleans up.
# Like the steps, it runs without a controlling terminal (without_terminal, scripts/lib/steps.sh):
# a background group of the terminal, it was stopped there by its first line with `stty tostop`
# set, and the run waited for it for ever.
images_pid=""
stop_images_build() {
  [ -n "$images_pid" ] && kill -0 "$images_pid" 2>/dev/null || return 0
  echo "[up] stopping the local image build this run started (process group $images_pid):" \
    "the run did not get to wait for it; the next npm run up builds what is missing" >&2
  kill -TERM -- "-$images_pid" 2>/dev/null || true
  kill -CONT -- "-$images_pid" 2>/dev/null || true
  local tries
  for ((tries = 0; tries < 100; tries++)); do kill -0 "$images_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$images_pid" 2>/dev/null || true
  wait "$images_pid" 2>/dev/null || true
  images_pid=""
}
# The long steps run through run_step (scripts/lib/steps.sh): a signal acts at once, passed to the
# step under way (before, SIGTERM or SIGHUP waited for the foreground step to end).
# shellcheck source=lib/steps.sh
source scripts/lib/steps.sh
trap 'stop_step TERM; stop_images_build' EXIT
trap 'stop_step INT; exit 130' INT
trap 'stop_step TERM; exit 143' TERM
trap 'stop_step HUP; exit 129' HUP
step "npm packages"
run_step up bash scripts/lib/npm-install.sh
# The host ports the stack publishes (the edge's 8443, the admin ports 15432...), from its own
# configuration, before any build: one another program holds is named now, with the key that moves
# it; before, `pulumi up` found it after the builds. Ports held by this stack's own containers (a
# second run, a rerun) are fine. It needs the npm packages, so the image build starts after it.
if [ "$target" = docker ]; then
  step "host ports of stack $STACK"
  run_step up bash scripts/lib/check-host-ports.sh "$STACK"
fi
if grep -qE '^ *trading:imageSource: *local' "Pulumi.$STACK.yaml"; then
  step "local images from Debian (in the background, beside the next steps)"
  set -m
  without_terminal bash scripts/images/build-images.sh </dev/null &
  images_pid=$!
  set +m
fi
step "Pulumi CLI and plugins that stack $STACK needs"
run_step up bash scripts/tools/build-pulumi-tools.sh "$STACK"
if [ -n "$images_pid" ]; then
  step "waiting for the local images"
  images_status=0
  wait "$images_pid" || images_status=$?
  images_pid=""
  [ "$images_status" = 0 ] || { echo "[up] building the local images failed (its log is named above)" >&2; exit 1; }
fi

step "npm cache for the services image (built offline by pulumi up)"
run_step up bash services/scripts/prepare-npm-cache.sh
step "Python wheels for the trainer image (built offline by pulumi up)"
run_step up bash scripts/ml/prepare-wheels.sh

if [ "$STACK" = local-k8s ]; then
  step "local Kubernetes cluster: tools (cached), platform images, start"
  run_step up bash scripts/cluster/build.sh
  run_step up bash scripts/cluster/platform-images.sh
  run_step up bash scripts/cluster/start.sh
  KUBECONFIG=$(bash scripts/cluster/kubeconfig.sh)
  export KUBECONFIG
fi

pulumi stack select --create "$STACK" --non-interactive >/dev/null
config_file=$(stack_config_file "$STACK")
if [ "$STACK" = local-k8s ]; then
  # The stack's TLS secret: a certificate for its ingress host from the cluster's ingress CA
  # (no cert-manager controller here), into this run's private config file, never the tracked one.
  host=$(sed -n 's/^ *trading:ingressHost: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "Pulumi.$STACK.yaml")
  tls_dir=$(bash scripts/cluster/ingress-cert.sh "$host")
  pulumi config set --secret --stack "$STACK" --config-file "$config_file" trading:tlsCertificate <"$tls_dir/tls.crt"
  pulumi config set --secret --stack "$STACK" --config-file "$config_file" trading:tlsPrivateKey <"$tls_dir/tls.key"
  echo "[up] ingress https://$host (resolve it to 10.255.255.1; CA: $tls_dir/ca.crt)" >&2
fi
policy=(--policy-pack policies --policy-pack-config "$policy_config")
# pulumi up builds the services and trainer images from the clone (components/services.ts).
# shellcheck source=lib/local-images.sh
source scripts/lib/local-images.sh
make_readable services/package.json services/src ml/trading_ml
step "pulumi up --stack $STACK"
run_step up pulumi up --stack "$STACK" --config-file "$config_file" --yes --non-interactive --skip-preview "${policy[@]}"
# The passphrase opened the stack's secrets: the backend keeps its fingerprint (scripts/lib/pulumi-env.sh).
pulumi_env_record_passphrase
step "outputs (secrets hidden; add --show-secrets to see connection strings)"
pulumi stack output --stack "$STACK"
# shellcheck source=lib/local-images.sh
source scripts/lib/local-images.sh
prune_superseded_images
step "done"
