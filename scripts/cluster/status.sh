#!/usr/bin/env bash
# Shows the local cluster: its processes (pid, RSS), node and add-ons, and the memory of the
# whole thing (daemons' RSS + the kubepods cgroup, i.e. every pod). Exit 0 when the apiserver
# answers, 1 otherwise.
#   bash scripts/cluster/status.sh
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1 # no -e here: a cache it cannot use stops it (lib.sh says why)
total_kb=0
printf '%-26s %8s %10s\n' component pid rss_MiB
for n in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy; do
	f=$RUN_DIR/$n.pid
	if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then
		p=$(cat "$f")
		kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")
		total_kb=$((total_kb + kb))
		printf '%-26s %8s %10s\n' "$n" "$p" "$((kb / 1024))"
	else
		printf '%-26s %8s %10s\n' "$n" - -
	fi
done
shim_kb=0
for p in $(pgrep -f containerd-shim 2>/dev/null); do
	tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "-address $CONTAINERD_SOCK" || continue
	shim_kb=$((shim_kb + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")))
done
pods_bytes=0
[ -r /sys/fs/cgroup/memory/kubepods/memory.usage_in_bytes ] && pods_bytes=$(cat /sys/fs/cgroup/memory/kubepods/memory.usage_in_bytes)
pods_cache=$(awk '/^total_inactive_file / {print $2}' /sys/fs/cgroup/memory/kubepods/memory.stat 2>/dev/null || echo 0)
pods_ws=$(((pods_bytes - ${pods_cache:-0}) / 1048576))
printf '%-26s %8s %10s\n' "container shims" - "$((shim_kb / 1024))"
printf '%-26s %8s %10s\n' "pods (kubepods working set)" - "$pods_ws"
printf '%-26s %8s %10s\n' TOTAL - "$(((total_kb + shim_kb) / 1024 + pods_ws))"
if ! curl -fsS --max-time 5 --cacert "$PKI_DIR/ca.crt" "https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null 2>&1; then
	echo "apiserver: not answering"
	exit 1
fi
echo "apiserver: ready (mode: $(cat "$RUN_DIR/mode" 2>/dev/null || echo ?)); KUBECONFIG=$KUBECONFIG_PATH"
kubectl_ get nodes -o wide 2>/dev/null
kubectl_ get pods -A -o wide 2>/dev/null | awk 'NR == 1 || $2 !~ /^$/' | head -60
