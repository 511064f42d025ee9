#!/usr/bin/env bash
# Checks that no trace of the local cluster is left on the host (after stop.sh): no process of its
# binaries or its containerd's shims, no KUBE-/CNI- iptables chain, no nft table of
# kube-network-policies, no bridge, no node IP on lo, no mount under its run directories, no
# kubepods cgroup. Prints each finding; exit 1 if any.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" || exit 1 # no -e here: a cache it cannot use stops it (lib.sh says why)
found=0
finding() { echo "[check-clean] LEFT: $*"; found=1; }
# Processes: a binary of the cluster (its executable under $K8S_CACHE/bin), our containerd, its shims.
for d in /proc/[0-9]*; do
	exe=$(readlink "$d/exe" 2>/dev/null) || continue
	args=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null)
	case "$exe" in
	"$K8S_CACHE"/bin/*) ;;
	*containerd*) [[ "$args" == *"$CONTAINERD_SOCK"* || "$args" == *"$RUN_DIR/containerd/config.toml"* ]] || continue ;;
	*) continue ;;
	esac
	finding "process ${d#/proc/}: ${args:0:120}"
done
for t in filter nat mangle raw; do
	c=$(iptables-save -t "$t" 2>/dev/null | grep -cE '^:(KUBE-|CNI-)')
	((c > 0)) && finding "$c KUBE-/CNI- chains in iptables table $t"
done
command -v nft >/dev/null && nft list table inet kube-network-policies >/dev/null 2>&1 && finding "nft table inet kube-network-policies"
ip link show "$BRIDGE" >/dev/null 2>&1 && finding "bridge $BRIDGE"
ip -4 addr show dev lo | grep -qF " $NODE_IP/" && finding "$NODE_IP on lo"
m=$(mounts_under "$RUN_DIR" /run/ai-trading-k8s /run/netns/cni- | tr -cd '\0' | wc -c)
((m > 0)) && finding "$m mounts under the cluster's run directories"
n=$(find /sys/fs/cgroup/*/kubepods* -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | wc -l)
((n > 0)) && finding "$n process(es) in kubepods cgroups (containers whose shim is gone)"
for c in /sys/fs/cgroup/*/kubepods*; do [ -d "$c" ] && finding "cgroup $c"; done
[ -f "$RUN_DIR/sysctl.orig" ] && finding "sysctls not restored ($RUN_DIR/sysctl.orig still there)"
((found)) || echo "[check-clean] host clean: no process, chain, nft table, bridge, address, mount or cgroup left"
exit $found
