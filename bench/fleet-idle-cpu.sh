#!/usr/bin/env bash
# CPU the running dev fleet burns, per container and in the Docker daemons, over a window:
#   bash bench/fleet-idle-cpu.sh [seconds=60]
# Reads each container's cgroup (v1 unified hierarchy or v2) before and after, so it counts what
# runs inside the container (the service, and the health checks Docker execs there); the daemons
# (dockerd, containerd, shims) are counted from their process times. Run it with the stack up
# (`npm run up`) and nothing sent to it: what is left is the idle cost.
set -euo pipefail
secs="${1:-60}"
cgroup_of() {
  local id="$1" d
  for d in "/sys/fs/cgroup/unified/docker/$id" "/sys/fs/cgroup/system.slice/docker-$id.scope" "/sys/fs/cgroup/docker/$id"; do
    [ -f "$d/cpu.stat" ] && { echo "$d/cpu.stat"; return; }
  done
  echo "no cgroup found for container $id" >&2; exit 1
}
usage_usec() { awk '/^usage_usec/ {print $2}' "$1"; }
daemon_seconds() { ps -C dockerd,containerd,containerd-shim-runc-v2,containerd-shim -o times= | awk '{s += $1} END {print s + 0}'; }
mapfile -t ids < <(docker ps -q --no-trunc)
[ "${#ids[@]}" -gt 0 ] || { echo "no running container: bring the stack up first (npm run up)" >&2; exit 1; }
declare -A before
for id in "${ids[@]}"; do before[$id]="$(usage_usec "$(cgroup_of "$id")")"; done
d0="$(daemon_seconds)"
sleep "$secs"
d1="$(daemon_seconds)"
rows="$(for id in "${ids[@]}"; do
  after="$(usage_usec "$(cgroup_of "$id")")"
  echo "$(( (after - before[$id]) / 1000 / secs )) $(docker inspect "$id" --format '{{.Name}}' | sed 's|^/||')"
done | sort -rn)"
echo "window: ${secs} s, ${#ids[@]} containers, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "containers: $(awk '{s += $1} END {print s}' <<<"$rows") ms of CPU per second"
echo "docker daemons: $(( (d1 - d0) * 1000 / secs )) ms of CPU per second (whole-second resolution)"
echo "per container (ms/s):"
# shellcheck disable=SC2001 # indents every line of a many-line value: sed says so plainer than ${rows//$'\n'/...}
sed 's/^/  /' <<<"$rows"
