#!/usr/bin/env bash
# Deploy for real, from a fresh machine: Docker engine, npm packages, the Pulumi CLI and plugins
# from Go modules, the Debian images, then the e2e suite (tests/e2e): `pulumi up` of the dev stack,
# login over HTTPS through Nginx, an order, a connection string, a stopped service firing the
# ServiceDown alert on the stack's Prometheus, `pulumi preview` with no change,
# `pulumi destroy` leaving nothing; `pulumi preview` with the policy pack (shipped stacks pass, the
# insecure fixture fails); prod manifests rendered without a cluster and schema-validated.
# Prints the time of each step.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
started=$(date +%s)
declare -A took
# Each step runs through run_step (scripts/lib/steps.sh): SIGTERM or SIGHUP to the run stops the
# step under way at once (the suite's pulumi up cancels as on Ctrl-C); before, bash died at once,
# set no trap, and left the step running without it.
# shellcheck source=lib/steps.sh
source scripts/lib/steps.sh
trap 'stop_step INT; exit 130' INT
trap 'stop_step TERM; exit 143' TERM
trap 'stop_step HUP; exit 129' HUP
step() {
  local name=$1; shift
  local t0; t0=$(date +%s)
  echo "[e2e] $name" >&2
  local rc=0
  run_step e2e "$@" || rc=$?
  took[$name]=$(( $(date +%s) - t0 ))
  echo "[e2e] $name took ${took[$name]}s" >&2
  return $rc
}

step "docker engine" bash scripts/docker/ensure-dockerd.sh
# The suite deploys stack dev itself, from a state of its own (tests/e2e/cli.ts): a dev stack already
# on this engine (this clone's `npm run up`, another clone's) makes it fail on the names. Said now;
# before, the suite said so after the toolchain and image builds (30 minutes cold).
clash=$(docker ps --all --filter name=ai-trading-dev- --format '{{.Names}}	{{.Label "trading.io/pulumi-state"}}' 2>/dev/null | grep '^ai-trading-dev-' | sort || true)
if [ -n "$clash" ]; then
  owners=$(cut -f2 <<<"$clash" | sort -u | sed -e 's/^<no value>$//' | while read -r state; do
    case $state in
    "") echo "a clone that did not label them (before session 45): npm run down there" ;;
    */.pulumi-state) echo "the clone at ${state%/.pulumi-state}: cd '${state%/.pulumi-state}' && npm run down" ;;
    *) echo "the state $state: pulumi destroy --stack dev there" ;;
    esac
  done | sort -u | paste -sd ';' | sed 's/;/; /g')
  echo "[e2e] ERROR: the e2e suite deploys stack dev itself, and this Docker engine has dev's containers already" \
    "($(cut -f1 <<<"$clash" | head -n 3 | paste -sd ' ')$( (($(wc -l <<<"$clash") > 3)) && echo " and $(($(wc -l <<<"$clash") - 3)) more")):" \
    "its pulumi up would fail on their names. Take that stack down first (${owners}), then run again" >&2
  exit 1
fi
# A dev stack whose containers were removed by hand (docker rm -f, not npm run down) leaves its volumes
# and network: the suite's deploy would stop on them after the builds (the Docker plugin takes over no
# volume it did not make, the engine makes no second network of a name). Said now too (session 46).
volumes=$(docker volume ls -q --filter name=ai-trading-dev- 2>/dev/null | grep '^ai-trading-dev-' | sort | paste -sd ' ' || true)
networks=$(docker network ls --format '{{.Name}}' --filter name=ai-trading-dev- 2>/dev/null | grep '^ai-trading-dev-' | sort | paste -sd ' ' || true)
if [ -n "$volumes$networks" ]; then
  echo "[e2e] ERROR: the e2e suite deploys stack dev itself, and this Docker engine has dev's" \
    "${volumes:+volumes $volumes}${volumes:+${networks:+ and }}${networks:+network $networks} with no container left:" \
    "its pulumi up would refuse them. Take that stack down in the clone that deployed it (npm run down there), or," \
    "when their data is not needed, remove them (${volumes:+docker volume rm $volumes}${volumes:+${networks:+; }}${networks:+docker network rm $networks})," \
    "then run again" >&2
  exit 1
fi
step "npm packages" bash scripts/lib/npm-install.sh
step "pulumi toolchain" bash scripts/tools/build-pulumi-tools.sh
step "local images" bash scripts/images/build-images.sh
step "services npm cache" bash services/scripts/prepare-npm-cache.sh
step "trainer wheels" bash scripts/ml/prepare-wheels.sh
# The suite's pulumi up builds the services and trainer images from the clone.
# shellcheck source=lib/local-images.sh
source scripts/lib/local-images.sh
make_readable services/package.json services/src ml/trading_ml
set +e
step "e2e suite" npx --no-install vitest run --config vitest.e2e.config.ts "$@"
status=$?
set -e
echo "[e2e] timings:" >&2
for k in "docker engine" "npm packages" "pulumi toolchain" "local images" "services npm cache" "trainer wheels" "e2e suite"; do
  printf '[e2e]   %-20s %5ss\n' "$k" "${took[$k]:-?}" >&2
done
echo "[e2e] total $(( $(date +%s) - started ))s, exit $status" >&2
exit $status
