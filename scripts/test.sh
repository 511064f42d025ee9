#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (apt packages, Kafka
# jars from Maven Central, npm packages), type-checks the three packages and the test tree, then
# runs every vitest suite. Real servers (PostgreSQL, Redis, Kafka, ClickHouse, Weaviate) are started by the harness on free
# loopback ports and stopped at the end.
#
#   npm test                       everything
#   npm test -- tests/unit         a subset (arguments go to vitest)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
started=$(date +%s)
step() { echo "[test] $* (+$(( $(date +%s) - started ))s)" >&2; }
# The builds' cache (TRADING_CACHE_DIR): with none to write (HOME unset or read-only), stop here, saying so.
# shellcheck source=lib/cache-dir.sh
source scripts/lib/cache-dir.sh || exit 1
# Node as package.json's engines says (Debian 12's own is too old): said now, before any install.
# shellcheck source=lib/node-version.sh
source scripts/lib/node-version.sh
require_node || exit 2
# The long steps run through run_step (scripts/lib/steps.sh), so that SIGTERM (kill, a supervisor,
# CI cancelling the job) and SIGHUP (a closed terminal) act at once and reach the step: before,
# bash ran no trap until the foreground step (vitest: up to an hour) ended, or, with no trap set
# (no Weaviate build), died at once and left that step running, with the harness's servers.
# shellcheck source=lib/steps.sh
source scripts/lib/steps.sh

# Weaviate: built from the Go module proxy and cached (scripts/weaviate/build.sh; ~11 min cold,
# instant warm). With the binary the Weaviate tests are required (a missing binary fails them): a
# cached binary is used as it is, Go or not (before, a machine without Go skipped them even then,
# saying so). Not cached and without Go they are skipped with the reason printed. Not cached yet, it
# is built in the background while the other suites run: the files that start a Weaviate run last
# and wait for it (tests/harness/sequencer.ts, weaviate.ts); on the cold run measured in session 32
# the build alone was 24 of the 45 minutes. It needs only Go, so it starts first: the packages, npm
# and the type-checks (5 minutes cold) no longer come before it on the run's longest path.
weaviate_build=""
# shellcheck disable=SC2317 # run by the traps below; shellcheck 0.9.0 calls it unreachable as the script ends in exit (koalaman/shellcheck#2542)
weaviate_build_left() {
  [ -n "$weaviate_build" ] && kill -0 "$weaviate_build" 2>/dev/null || return 0
  echo "[test] the Weaviate server build goes on in the background to fill the cache (log $WEAVIATE_BUILD_LOG):" \
    "the next npm test uses it, or waits for it; to stop it: kill -- -$weaviate_build" >&2
}
# shellcheck disable=SC2317 # run by the traps below; shellcheck 0.9.0 calls it unreachable as the script ends in exit (koalaman/shellcheck#2542)
weaviate_build_stop() {
  [ -n "$weaviate_build" ] && kill -0 "$weaviate_build" 2>/dev/null || return 0
  echo "[test] stopping the Weaviate server build this run started (process group $weaviate_build)" >&2
  kill -TERM -- "-$weaviate_build" 2>/dev/null || true
  weaviate_build=""
}
# Ctrl-C, SIGTERM, a closed terminal: the step under way and the Weaviate build this run started stop.
trap 'stop_step INT; weaviate_build_stop; exit 130' INT
trap 'stop_step TERM; weaviate_build_stop; exit 143' TERM
trap 'stop_step HUP; weaviate_build_stop; exit 129' HUP
# shellcheck source=lib/go.sh # the elif's below (a directive cannot stand before an elif)
if bin=$(WEAVIATE_CACHED_ONLY=1 bash scripts/weaviate/build.sh 2>/dev/null); then
  export WEAVIATE_REQUIRED=1
  step "weaviate server cached: $bin"
# A usable Go (scripts/lib/go.sh: >= 1.21; Debian 12's golang-go 1.19 fails the build minutes in).
elif go_why=$( (source scripts/lib/go.sh && find_go) 2>&1 ); then
  export WEAVIATE_REQUIRED=1
  weaviate_log="$(mktemp -d)/weaviate-build.log"
  # Its exit status lands in <log>.exit: the waiting files tell a failed build from a slow one.
  # A process group of its own (set -m), so that it can be stopped whole (below); none of this run's
  # output is kept open by it (before, `npm test | tee` waited for the build after a failed run).
  set -m
  (set +e; nice -n 10 bash scripts/weaviate/build.sh >"$weaviate_log" 2>&1; echo $? >"$weaviate_log.exit") </dev/null >/dev/null 2>&1 &
  weaviate_build=$!
  set +m
  export WEAVIATE_BUILD_LOG=$weaviate_log
  step "weaviate server: building in the background (pid $weaviate_build, log $weaviate_log)"
  # A run that ends before waiting for it leaves it to fill the cache when a step failed, saying so
  # and how to stop it; stopped itself (Ctrl-C, SIGTERM, a closed terminal), it stops the build too.
  # Before, the build went on without a word, and the next run's build waited for it.
  trap 'stop_step TERM; weaviate_build_left' EXIT
else
  echo "[test] SKIPPING Weaviate tests: the server is not cached and there is no Go to build it with: ${go_why#\[go\] ERROR: }" >&2
fi

step "system packages and Kafka"
run_step test bash scripts/deps/install-test-deps.sh >/dev/null
step "npm packages"
run_step test bash scripts/lib/npm-install.sh

# Type-checks first (seconds, fail fast): the program, the services, the policy pack, and the
# test tree with the benchmarks (tsconfig.tests.json; vitest itself does not check types).
step "type-check"
run_step test npx --no-install tsc --noEmit -p tsconfig.json
run_step test npx --no-install tsc --noEmit -p services/tsconfig.json
run_step test npx --no-install tsc --noEmit -p policies/tsconfig.json
run_step test npx --no-install tsc --noEmit -p tsconfig.tests.json

step "vitest"
report="$(mktemp -d)/vitest.json"
status=0
run_step test npx --no-install vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
if [ -n "$weaviate_build" ]; then
  # A subset run may not have needed it: the build goes on to fill the cache for the next run.
  wait "$weaviate_build"
  weaviate_build=""
  if [ "$(cat "$WEAVIATE_BUILD_LOG.exit" 2>/dev/null)" != 0 ]; then
    echo "[test] the Weaviate build failed (log $WEAVIATE_BUILD_LOG):" >&2
    tail -n 20 "$WEAVIATE_BUILD_LOG" >&2
    status=1
  fi
fi
if [ -f "$report" ]; then
  # shellcheck disable=SC2016 # node's code, not the shell's
  node -e '
    const r = require(process.argv[1]);
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
    // Which files skipped what (session 50): some suites run only with a tool another command builds
    // into the cache (the Pulumi CLI and plugins: scripts/tools/build-pulumi-tools.sh; the control plane:
    // scripts/cluster/build.sh --control-plane), so a fresh machine skips what this one runs (README).
    for (const f of r.testResults) {
      const n = f.assertionResults.filter((a) => a.status === "pending" || a.status === "skipped" || a.status === "todo").length;
      if (n > 0) console.log(`  skipped ${n} in ${require("path").relative(process.cwd(), f.name)}`);
    }
  ' "$report"
fi
step "done (exit $status)"
exit $status
