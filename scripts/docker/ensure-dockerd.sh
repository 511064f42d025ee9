#!/usr/bin/env bash
# Ensure a working Docker engine: one that answers (this machine's or DOCKER_HOST's) is used as it
# is; a remote DOCKER_HOST (tcp://, ssh://) that does not answer is an error naming it; otherwise
# install docker.io if missing, start dockerd in the background, wait (bounded) until it answers.
# Idempotent and quiet when the engine already runs.
# Env: DOCKER_STORAGE_DRIVER (default: overlay2, falls back to vfs),
#      DOCKERD_WAIT_SECONDS (default 60), DOCKERD_EXTRA_ARGS (extra dockerd flags, word-split;
#      a second daemon on the same host needs its own -H/--data-root/--exec-root/--pidfile and
#      must not be given --bridge=none: that removes the first daemon's docker0),
#      DOCKERD_LOG (log file), TRADING_CACHE_DIR.
set -euo pipefail

# shellcheck source=../lib/cache-dir.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cache-dir.sh" || exit 1 # TRADING_CACHE_DIR, or stops naming what to set
CACHE_DIR="$TRADING_CACHE_DIR"
WAIT="${DOCKERD_WAIT_SECONDS:-60}"
LOG_DIR=/var/log
[ -w "$LOG_DIR" ] || LOG_DIR="$CACHE_DIR/logs"
mkdir -p "$LOG_DIR"
LOG="${DOCKERD_LOG:-$LOG_DIR/ai-trading-dockerd.log}"

log() { echo "[ensure-dockerd] $*" >&2; }
# shellcheck source=../lib/locks.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/locks.sh"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

# A running local daemon whose default bridge interface vanished (something deleted docker0)
# fails every `docker run`/`docker build` with "could not find bridge docker0": recreate it.
heal_docker0() {
  [ -z "${DOCKER_HOST:-}" ] || return 0
  command -v ip >/dev/null 2>&1 || return 0
  ip link show docker0 >/dev/null 2>&1 && return 0
  local gw subnet
  gw="$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null || true)"
  subnet="$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' 2>/dev/null || true)"
  [ -n "$gw" ] && [ -n "$subnet" ] || return 0
  log "docker0 is missing: recreating it ($gw/${subnet#*/})"
  as_root ip link add docker0 type bridge
  as_root ip addr add "$gw/${subnet#*/}" dev docker0
  as_root ip link set docker0 up
}

# An engine that answers (this machine's, or DOCKER_HOST's) is used as it is: nothing to install.
# Before, a machine with a docker client but no dockerd (a remote engine through DOCKER_HOST) had
# docker.io installed by apt first.
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  heal_docker0
  exit 0
fi
# A remote engine that does not answer is not replaced by a local daemon (which `docker` would not
# talk to anyway): name it. A unix socket may be a daemon to start here (DOCKERD_EXTRA_ARGS -H ...).
case "${DOCKER_HOST:-}" in
"" | unix://*) ;;
*)
  log "ERROR: DOCKER_HOST=$DOCKER_HOST does not answer (docker info: $(docker info 2>&1 | grep -m1 -iE 'error|cannot' | cut -c1-200)):" \
    "start that engine, or unset DOCKER_HOST to use (and start) this machine's"
  exit 1
  ;;
esac
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  log "installing docker.io (apt)"
  apt_get update -qq
  apt_get install -y -qq --no-install-recommends docker.io iptables ca-certificates
fi
if docker info >/dev/null 2>&1; then
  heal_docker0
  exit 0
fi

wait_ready() {
  local deadline=$((SECONDS + WAIT))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if docker info >/dev/null 2>&1; then return 0; fi
    if [ -n "${DPID:-}" ] && ! kill -0 "$DPID" 2>/dev/null; then return 1; fi
    sleep 1
  done
  return 1
}

start_dockerd() {
  local driver="$1"
  # A stale pid file from a dead daemon blocks the start.
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    as_root rm -f /var/run/docker.pid
  fi
  log "starting dockerd (storage driver $driver), log: $LOG"
  # shellcheck disable=SC2086
  as_root nohup dockerd --storage-driver="$driver" ${DOCKERD_EXTRA_ARGS:-} >>"$LOG" 2>&1 </dev/null &
  DPID=$!
  wait_ready
}

DRIVER="${DOCKER_STORAGE_DRIVER:-overlay2}"
if start_dockerd "$DRIVER"; then
  exit 0
fi
if [ -z "${DOCKER_STORAGE_DRIVER:-}" ] && [ "$DRIVER" = overlay2 ]; then
  log "dockerd with overlay2 did not come up; retrying with vfs"
  if [ -n "${DPID:-}" ]; then kill "$DPID" 2>/dev/null || true; wait "$DPID" 2>/dev/null || true; fi
  if start_dockerd vfs; then exit 0; fi
fi
log "ERROR: docker daemon did not answer within ${WAIT}s; errors in $LOG:"
{ grep -E 'level=(error|fatal)|^failed' "$LOG" | tail -n 10; } >&2 || true
exit 1
