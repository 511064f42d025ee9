# shellcheck shell=bash disable=SC2034 # its variables are read by the scripts that source it, checked with them
# Shared by scripts/cluster/*.sh: paths, versions, logging. Sourced, never run.
#
# Layout of the cache (outside the clone, reused by every clone and CI on this machine):
#   $K8S_CACHE/go/{mod,build}        GOMODCACHE / GOCACHE of every cluster build
#   $K8S_CACHE/src/<name>-<version>  writable (patched) copies of module trees
#   $K8S_CACHE/bin/<name>-<version>/ finished binaries (+ .stamp naming what was built)
#   $K8S_CACHE/images/<name>-<tag>.tar  docker-archive images of the cluster add-ons
#   $K8S_CACHE/logs/                 build logs; build-times.txt (one line per step)
#   $K8S_CACHE/run/                  state of a running cluster (PKI, etcd, kubelet, containerd...)
#   $K8S_CACHE/run/pki/admin.kubeconfig   the admin kubeconfig (also: scripts/cluster/kubeconfig.sh)

CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$CLUSTER_DIR/../.." && pwd)
# shellcheck source=versions.env
source "$CLUSTER_DIR/versions.env"

# shellcheck source=../lib/cache-dir.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cache-dir.sh" || return 1 # TRADING_CACHE_DIR, or stops naming what to set
CACHE_DIR=$TRADING_CACHE_DIR
K8S_CACHE=$CACHE_DIR/k8s
K8S_BIN=$K8S_CACHE/bin/kubernetes-$K8S_VERSION
ETCD_BIN=$K8S_CACHE/bin/etcd-$ETCD_VERSION
IMAGES_DIR=$K8S_CACHE/images
LOGS_DIR=$K8S_CACHE/logs
# K8S_INSTANCE=<name>: a private control plane (start.sh --control-plane-only only) with its own
# run directory and ports (K8S_APISERVER_PORT, K8S_ETCD_PORT, K8S_ETCD_PEER_PORT,
# K8S_ETCD_METRICS_PORT, K8S_CONTROLLER_MANAGER_PORT, K8S_SCHEDULER_PORT), loopback only: a test
# gets an apiserver without touching the cluster that may be running (its stop.sh stops only it).
K8S_INSTANCE=${K8S_INSTANCE:-}
if [ -n "$K8S_INSTANCE" ]; then
	[[ "$K8S_INSTANCE" =~ ^[a-z0-9][a-z0-9-]{0,40}$ ]] || { echo "[cluster] ERROR: K8S_INSTANCE must be [a-z0-9-]: $K8S_INSTANCE" >&2; exit 2; }
	RUN_DIR=$K8S_CACHE/instances/$K8S_INSTANCE
	START_LOCK=$RUN_DIR.lock
else
	RUN_DIR=$K8S_CACHE/run
	START_LOCK=$K8S_CACHE/.start.lock
fi
PKI_DIR=$RUN_DIR/pki
KUBECONFIG_PATH=$PKI_DIR/admin.kubeconfig

# Network plan: everything on loopback or the node IP (a /32 on lo; this kernel has no dummy driver).
NODE_IP=${K8S_NODE_IP:-10.255.255.1}
POD_CIDR=10.244.0.0/24
CLUSTER_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/16
CLUSTER_DNS_IP=10.96.0.10
APISERVER_PORT=${K8S_APISERVER_PORT:-6443}
ETCD_PORT=${K8S_ETCD_PORT:-2379}
ETCD_PEER_PORT=${K8S_ETCD_PEER_PORT:-2380}
ETCD_METRICS_PORT=${K8S_ETCD_METRICS_PORT:-2381}
CONTROLLER_MANAGER_PORT=${K8S_CONTROLLER_MANAGER_PORT:-10257}
SCHEDULER_PORT=${K8S_SCHEDULER_PORT:-10259}
BRIDGE=aitrading-br0
CNI_NETWORK=aitrading
# Private containerd: own socket, root and state; Docker's containerd (/run/containerd) is untouched.
CONTAINERD_STATE=/run/ai-trading-k8s/containerd
CONTAINERD_SOCK=$CONTAINERD_STATE/containerd.sock

now_ns() { date +%s%N; }
secs_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }
log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }

# mounts_under PREFIX...: the mount points that begin with any PREFIX (a folder's path, or the start of
# names: /run/netns/cni-), each ended by a NUL byte, as umount takes them (read them with `read -r -d ''`,
# sort them with `sort -z`). Compared as text, not as a pattern: RUN_DIR is under TRADING_CACHE_DIR, the
# user's path, where a '.', '[' or '*' read as a regular expression matched other mounts or broke the
# pattern. /proc/mounts writes a space, tab, newline and backslash in a path as \040, \011, \012, \134 (so a
# cache path with a space matched nothing): decoded first, \134 last. A newline is a character of a path
# like any other, so neither the paths printed nor the PREFIXes are separated by newlines (a mount point
# "/x<newline>/y" printed one a line was two paths to umount; a PREFIX "/c<newline>/" was the PREFIX "/",
# every mount): the PREFIXes reach awk as its arguments (taken out of ARGV before any file is read).
# A PREFIX that is a folder is taken with its symbolic links resolved, as the kernel shows mount points.
# PROC_MOUNTS: another file to read than /proc/mounts (the tests).
mounts_under() {
	local prefixes=() p
	for p in "$@"; do
		# The x keeps a trailing newline of the path, which $(...) would strip; then readlink's newline and the x go.
		[[ -d "$p" ]] && p=$(readlink -f -- "$p" && echo x) && p=${p%?x}
		prefixes+=("$p")
	done
	# printf "%c", 0 writes a NUL byte in mawk, gawk and busybox awk alike ("\0" in a string ends it in mawk).
	awk '
		BEGIN { for (i = 1; i < ARGC - 1; i++) { prefix[i] = ARGV[i]; delete ARGV[i] } n = ARGC - 2 }
		{
			m = $2
			gsub(/\\040/, " ", m); gsub(/\\011/, "\t", m); gsub(/\\012/, "\n", m); gsub(/\\134/, "\\", m)
			for (i = 1; i <= n; i++) if (prefix[i] != "" && index(m, prefix[i]) == 1) { printf "%s%c", m, 0; next }
		}' "${prefixes[@]}" "${PROC_MOUNTS:-/proc/mounts}"
}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

kubectl_() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
ctr_() { ctr -a "$CONTAINERD_SOCK" -n k8s.io "$@"; }
