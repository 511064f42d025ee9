#!/usr/bin/env bash
# Stops the local cluster started by start.sh and leaves the host as it found it: every process
# it started (by recorded pid, plus the container shims of its private containerd), the pods'
# network namespaces and veths, the bridge, KUBE-*/CNI-* iptables chains and the nft table of
# kube-network-policies, the node IP on lo, the sysctls (restored from run/sysctl.orig), the
# kubepods cgroups and the mounts under the run directories. Docker's chains, its containerd and
# its bridge are never touched. Idempotent: a second run finds nothing to do.
#
#   bash scripts/cluster/stop.sh           # keeps the cluster's data (etcd, PKI, images, volumes)
#   bash scripts/cluster/stop.sh --purge   # also deletes it: the next start is a fresh cluster
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1 # no -e here: a cache it cannot use stops it (lib.sh says why)
PURGE=0
case "${1:-}" in
	"") ;;
	--purge) PURGE=1 ;;
	*) die "usage: stop.sh [--purge]" ;;
esac
[ "$(id -u)" -eq 0 ] || die "stop.sh needs root"
[ -d "$K8S_CACHE" ] || exit 0
[ -z "$K8S_INSTANCE" ] || [ -d "$RUN_DIR" ] || exit 0
exec 9>"$START_LOCK"
# shellcheck source=../lib/locks.sh
source "$ROOT/scripts/lib/locks.sh"
wait_for_lock 9 "$START_LOCK" "another start or stop of the cluster"

# stop_pid NAME: TERM, then KILL after 10 s, the daemon recorded in run/NAME.pid.
stop_pid() {
	local f=$RUN_DIR/$1.pid p i
	[ -f "$f" ] || return 0
	p=$(cat "$f")
	if kill -0 "$p" 2>/dev/null; then
		kill "$p"
		for ((i = 0; i < 20; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
		kill -0 "$p" 2>/dev/null && kill -9 "$p"
		log "stopped $1 ($p)"
	fi
	rm -f "$f"
}

# Shims of OUR containerd: their command line names our socket.
our_shims() {
	local p
	for p in $(pgrep -f containerd-shim 2>/dev/null); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "-address $CONTAINERD_SOCK" && echo "$p"
	done
}

# A private instance (K8S_INSTANCE) is a control plane on loopback: its daemons and, always, its
# directory; nothing of the host's cluster (network, shims, sysctls) is touched.
if [ -n "$K8S_INSTANCE" ]; then
	for n in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_pid "$n"; done
	rm -rf "$RUN_DIR" "$START_LOCK"
	log "instance $K8S_INSTANCE stopped and removed"
	exit 0
fi
stop_pid kube-proxy
stop_pid kubelet
if [ -S "$CONTAINERD_SOCK" ] && [ -f "$RUN_DIR/containerd.pid" ]; then
	for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
	for i in $(seq 1 10); do [ -z "$(ctr_ tasks ls -q 2>/dev/null | head -1)" ] && break; sleep 1; for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$t" >/dev/null 2>&1; done; done
	for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$c" >/dev/null 2>&1; done
fi
stop_pid containerd
for p in $(our_shims); do kill -9 "$p" 2>/dev/null && log "killed shim $p"; done
stop_pid kube-scheduler
stop_pid kube-controller-manager
stop_pid kube-apiserver
stop_pid etcd

# Pod network namespaces (containerd names them cni-<uuid>) and their veths on our bridge.
for v in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do ip link del "$v" 2>/dev/null; done
for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do
	[ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && ip netns delete "$ns" 2>/dev/null
done
ip link del "$BRIDGE" 2>/dev/null && log "deleted bridge $BRIDGE"
# The /run/netns mount start.sh made (shared_netns_dir), once no namespace is left in it.
if [ -f "$RUN_DIR/netns-mount" ] && [ -z "$(ip netns list 2>/dev/null)" ]; then
	umount /run/netns 2>/dev/null && log "unmounted /run/netns"
	rm -f "$RUN_DIR/netns-mount"
fi
rm -rf "$RUN_DIR/cni/ipam"

# iptables: kube-proxy's own cleanup, then every remaining KUBE-*/CNI-* chain and the jumps to them.
[ -x "$K8S_BIN/kube-proxy" ] && "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1
removed=0
for ipt in iptables ip6tables; do
	command -v "$ipt" >/dev/null || continue
	for t in filter nat mangle raw; do
		"$ipt-save" -t "$t" 2>/dev/null | grep -E '^-A [A-Z]+ .*-j (KUBE-|CNI-)' | grep -vE '^-A (KUBE-|CNI-)' | sed 's/^-A /-D /' |
			while read -r r; do eval "$ipt -t $t $r" 2>/dev/null; done
		chains=$("$ipt-save" -t "$t" 2>/dev/null | grep -oE '^:(KUBE-|CNI-)[A-Za-z0-9_-]+' | tr -d :)
		for c in $chains; do "$ipt" -t "$t" -F "$c" 2>/dev/null; done
		for c in $chains; do "$ipt" -t "$t" -X "$c" 2>/dev/null && removed=$((removed + 1)); done
	done
done
((removed)) && log "removed $removed KUBE-/CNI- iptables chains"
if command -v nft >/dev/null && nft list table inet kube-network-policies >/dev/null 2>&1; then
	nft delete table inet kube-network-policies && log "deleted nft table inet kube-network-policies"
fi

ip addr del "$NODE_IP/32" dev lo 2>/dev/null && log "removed $NODE_IP from lo"

# Mounts left by the kubelet/containerd (deepest first), then the kubepods cgroup trees.
mounts_under "$RUN_DIR" "$CONTAINERD_STATE" /run/ai-trading-k8s /run/netns/cni- /var/run/netns/cni- | sort -rz |
	while IFS= read -r -d '' m; do umount -l "$m" 2>/dev/null; done
# Containers whose shim died first (a loaded machine can make `ctr tasks kill` time out) keep
# running in their kubepods cgroups: every process still there is ours, killed until none is left.
kubepods_procs() { find /sys/fs/cgroup/*/kubepods* /sys/fs/cgroup/kubepods* -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u; }
for i in $(seq 1 10); do
	left=$(kubepods_procs)
	[ -z "$left" ] && break
	# shellcheck disable=SC2086
	kill -9 $left 2>/dev/null
	log "killed $(echo "$left" | wc -w) process(es) left in the kubepods cgroups"
	sleep 1
done
for c in /sys/fs/cgroup/*/kubepods* /sys/fs/cgroup/kubepods*; do
	[ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
done
rm -rf /run/ai-trading-k8s

if [ -f "$RUN_DIR/sysctl.orig" ]; then
	while IFS='=' read -r k v; do
		[ "$(cat "/proc/sys/$k" 2>/dev/null)" = "$v" ] || echo "$v" >"/proc/sys/$k" 2>/dev/null
	done <"$RUN_DIR/sysctl.orig"
	rm -f "$RUN_DIR/sysctl.orig"
	log "restored sysctls"
fi
rm -f "$RUN_DIR/mode"
# Images and containers stay in containerd's root (re-used by the next start) unless purged.
if ((PURGE)); then
	rm -rf "$RUN_DIR" "$K8S_CACHE/volumes"
	log "purged cluster data ($RUN_DIR, $K8S_CACHE/volumes)"
fi
log "stopped"
