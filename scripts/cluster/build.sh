#!/usr/bin/env bash
# Builds everything the local single-node Kubernetes cluster needs, from the Go module proxy and
# Debian only (no registry, no GitHub), cached outside the clone (see lib.sh for the layout):
#   Debian packages   containerd runc containernetworking-plugins conntrack iptables nftables busybox-static
#   control plane     etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
#   node              kubelet, kube-proxy, pause (static C binary from the kubernetes tree)
#   add-ons           CoreDNS, kube-network-policies (patched: xtables NFQUEUE), local-path-provisioner,
#                     metrics-server, Traefik v3 (patched: go.mod, nested module stub, lego DNS providers)
#   images            one-layer docker-archive images of the add-ons (mkimage.py), imported by start.sh
#
#   bash scripts/cluster/build.sh                  # everything; idempotent (warm: seconds)
#   bash scripts/cluster/build.sh --control-plane  # only what `start.sh --control-plane-only` needs
#
# One Go build at a time, under `nice -n 10`; one progress line per step with its elapsed time,
# also appended to $K8S_CACHE/logs/build-times.txt. A finished binary has a .stamp naming its
# inputs (version + patch hash): a step whose stamp matches is skipped. K8S_BUILD_FORCE=1 rebuilds.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SCOPE=all
case "${1:-}" in
	"") ;;
	--control-plane) SCOPE=control-plane ;;
	*) die "usage: build.sh [--control-plane]" ;;
esac

mkdir -p "$K8S_CACHE"/{go,src,bin} "$IMAGES_DIR" "$LOGS_DIR"
# One build.sh at a time (a second one waits, then finds the work done).
exec 9>"$K8S_CACHE/.build.lock"
# shellcheck source=../lib/locks.sh
source "$ROOT/scripts/lib/locks.sh"
wait_for_lock 9 "$K8S_CACHE/.build.lock" "another build of the cluster's binaries"

export GOPATH=$K8S_CACHE/go
export GOMODCACHE=$K8S_CACHE/go/mod
export GOCACHE=$K8S_CACHE/go/build
export GOTOOLCHAIN=auto
export CGO_ENABLED=0
export GOFLAGS=-buildvcs=false
export GOWORK=off
# shellcheck source=../lib/go.sh
source "$ROOT/scripts/lib/go.sh"
find_go || die "the cluster's binaries are built from the Go module proxy and need Go (above)"

TIMES=$LOGS_DIR/build-times.txt
T_ALL=$(now_ns)

# step LABEL CMD...: runs CMD, prints and records its elapsed time; aborts the script on failure.
step() {
	local label=$1 t0 rc=0
	shift
	t0=$(now_ns)
	log "$label ..."
	"$@" || rc=$?
	local secs
	secs=$(secs_since "$t0")
	if ((rc != 0)); then
		printf '[cluster] %-52s %8ss  FAILED (exit %d)\n' "$label" "$secs" "$rc" >&2
		exit "$rc"
	fi
	printf '[cluster] %-52s %8ss\n' "$label" "$secs" >&2
	printf '%s\t%s\t%ss\n' "$(date -u +%FT%TZ)" "$label" "$secs" >>"$TIMES"
}

# stamp_ok DIR KEY: DIR/.stamp holds KEY (the build is current).
stamp_ok() { [ -z "${K8S_BUILD_FORCE:-}" ] && [ -f "$1/.stamp" ] && [ "$(cat "$1/.stamp")" = "$2" ]; }
write_stamp() { printf '%s\n' "$2" >"$1/.stamp"; }

# mod_dir MODULE@VERSION: downloads a module through the proxy, prints its read-only directory.
mod_dir() {
	local dir
	dir=$(cd "$K8S_CACHE" && go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	if [ -z "$dir" ] || [ ! -d "$dir" ]; then
		log "go mod download $1 failed"
		return 1
	fi
	printf '%s\n' "$dir"
}

# writable_copy MODULE@VERSION DEST: fresh writable copy of a module tree.
writable_copy() {
	local src
	src=$(mod_dir "$1")
	rm -rf "$2"
	cp -a "$src" "$2"
	chmod -R u+w "$2"
}

# gobuild LOGNAME OUT [go build args...]: niced go build, output in a log (tail shown on failure).
gobuild() {
	local name=$1 out=$2
	shift 2
	local logf=$LOGS_DIR/build-$name.log
	if ! nice -n 10 go build -trimpath -o "$out.tmp" "$@" >"$logf" 2>&1; then
		tail -n 30 "$logf" >&2
		return 1
	fi
	mv "$out.tmp" "$out"
}

# --- Debian packages -------------------------------------------------------------------------
DEBS=(containerd runc containernetworking-plugins conntrack iptables nftables busybox-static)
install_debs() {
	local missing=() p
	for p in "${DEBS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
	as_root apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# --- etcd ------------------------------------------------------------------------------------
# server/v3's go.mod has relative replaces, so `go install ...@v` is refused: a wrapper module
# that requires server/v3 and etcdctl/v3 builds both.
build_etcd() {
	local w=$K8S_CACHE/src/etcd-$ETCD_VERSION
	mkdir -p "$w" "$ETCD_BIN"
	cd "$w"
	printf 'module aitrading.local/etcdbuild\n\ngo 1.24\n' >go.mod
	printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "go.etcd.io/etcd/etcdctl/v3"\n\t_ "go.etcd.io/etcd/server/v3"\n)\n' >tools.go
	go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@$ETCD_VERSION" >"$LOGS_DIR/build-etcd-get.log" 2>&1 ||
		{ tail -n 20 "$LOGS_DIR/build-etcd-get.log" >&2; return 1; }
	gobuild etcd "$ETCD_BIN/etcd" -ldflags "-s -w" go.etcd.io/etcd/server/v3
	gobuild etcdctl "$ETCD_BIN/etcdctl" -ldflags "-s -w" go.etcd.io/etcd/etcdctl/v3
	write_stamp "$ETCD_BIN" "etcd $ETCD_VERSION"
}

# --- kubernetes ------------------------------------------------------------------------------
# The k8s.io/kubernetes module zip lacks staging/src/k8s.io/* (separate modules on the proxy):
# lay out k8s.io/<name>@v0.<minor>.<patch> for every staging replace; drop go.work (GOWORK=off
# semantics) and vendor/ (only OWNERS in the zip; its presence would force -mod=vendor).
K8S_SRC=$K8S_CACHE/src/kubernetes-$K8S_VERSION
prepare_k8s_src() {
	local staging_version=v0.${K8S_VERSION#v1.} m d staged=()
	writable_copy "k8s.io/kubernetes@$K8S_VERSION" "$K8S_SRC.tmp"
	cd "$K8S_SRC.tmp"
	mapfile -t staged < <(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/.*#\1#p' go.mod)
	for m in "${staged[@]}"; do
		# sample-* modules are only in go.work, not in the build graph: tolerate their absence.
		d=$(mod_dir "$m@$staging_version" 2>/dev/null) || { log "  (no $m@$staging_version on the proxy; not in the build graph)"; continue; }
		mkdir -p "staging/src/$(dirname "$m")"
		rm -rf "staging/src/$m"
		cp -a "$d" "staging/src/$m"
		chmod -R u+w "staging/src/$m"
	done
	rm -f go.work go.work.sum
	rm -rf vendor
	cd "$K8S_CACHE"
	rm -rf "$K8S_SRC"
	mv "$K8S_SRC.tmp" "$K8S_SRC"
	write_stamp "$K8S_SRC" "src $K8S_VERSION"
}

k8s_ldflags() {
	local minor ld="-s -w" p
	minor=$(echo "$K8S_VERSION" | cut -d. -f2)
	for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
		ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
		ld="$ld -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.buildDate=1970-01-01T00:00:00Z"
	done
	printf '%s' "$ld"
}

build_k8s_cmd() {
	local cmd=$1
	mkdir -p "$K8S_BIN"
	cd "$K8S_SRC"
	gobuild "$cmd" "$K8S_BIN/$cmd" -mod=mod -ldflags "$(k8s_ldflags)" "./cmd/$cmd"
	write_stamp "$K8S_BIN" "$(cd "$K8S_BIN" && printf '%s ' *)" # the binaries built so far
}

# pause: the sandbox image's only binary, a static C program from the tree.
PAUSE_DIR=$K8S_CACHE/bin/pause-$PAUSE_TAG
build_pause() {
	mkdir -p "$PAUSE_DIR"
	gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_TAG-aitrading" -o "$PAUSE_DIR/pause" "$K8S_SRC/build/pause/linux/pause.c"
	strip "$PAUSE_DIR/pause"
	write_stamp "$PAUSE_DIR" "pause $PAUSE_TAG"
}

# --- add-ons ---------------------------------------------------------------------------------
PATCHES=$CLUSTER_DIR/patches

# addon NAME MODULE VERSION PKG [go build args]: copy the module tree, run prepare_NAME if
# defined, build PKG into bin/NAME-VERSION/NAME. Key = version + hash of the patches of NAME.
addon_key() {
	local h f
	# From inside the folder, NUL-separated: the clone's path held a space ("/tmp/my clone"), xargs split it, cat
	# read nothing and every addon's key was that of no patches (session 62); a '[' or '*' in it was a -path glob.
	# The name too is compared as text, a prefix of the file's path ("./traefik" takes ./traefik-*/...), not as
	# find's -path pattern, where a '*', '?' or '[' in it would match other files.
	h=$(cd "$PATCHES" && find . -type f -print0 | sort -z |
		while IFS= read -r -d '' f; do if [[ "$f" == "./$1"* ]]; then printf '%s\0' "$f"; fi; done |
		xargs -0 -r cat | sha256sum | cut -c1-12)
	printf '%s %s %s' "$1" "$2" "$h"
}
build_addon() {
	local name=$1 module=$2 version=$3 pkg=$4
	shift 4
	local out=$K8S_CACHE/bin/$name-$version src=$K8S_CACHE/src/$name-$version
	writable_copy "$module@$version" "$src"
	cd "$src"
	if declare -F "prepare_${name//-/_}" >/dev/null; then "prepare_${name//-/_}" "$src"; fi
	mkdir -p "$out"
	gobuild "$name" "$out/$name" -ldflags "-s -w" "$@" "$pkg"
	write_stamp "$out" "$(addon_key "$name" "$version")"
}

# kube-network-policies: this kernel lacks CONFIG_NFT_QUEUE, so the stock controller's nft
# `queue` rules fail (ENOENT) and NO policy is enforced; the patch adds --nfqueue-xt-target
# (the same rules with the xtables NFQUEUE target through nft_compat, which the kernel has).
prepare_kube_network_policies() { patch -s -p1 <"$PATCHES/kube-network-policies-nfqueue-xt-target.diff"; }

# traefik: (1) the nested module github.com/traefik/traefik/dynamic/ext is replaced by
# ./pkg/config/dynamic/ext, which the module zip leaves out: recreate it (empty structs, as
# upstream); (2) the go-http-auth fork pseudo-version is refused by the proxy: an older fork;
# (3) lego: 13 DNS providers whose SDKs the proxy refuses are cut (patched copy).
prepare_traefik() {
	local lego=$K8S_CACHE/src/lego-$LEGO_VERSION-patched
	writable_copy "github.com/go-acme/lego/v5@$LEGO_VERSION" "$lego"
	(cd "$lego" && patch -s -p1 <"$PATCHES/traefik-lego-dns-providers.diff")
	mkdir -p pkg/config/dynamic/ext
	cp "$PATCHES/traefik-dynamic-ext-stub/ext.go" pkg/config/dynamic/ext/ext.go
	cp "$PATCHES/traefik-dynamic-ext-stub/go.mod" pkg/config/dynamic/ext/go.mod
	go mod edit -replace "github.com/abbot/go-http-auth=$TRAEFIK_GO_HTTP_AUTH"
	go mod edit -replace "github.com/go-acme/lego/v5=$lego"
}

# netcheck: a tiny static client (dns/get/tcp) for in-pod checks of the e2e suite
# (busybox-static's wget segfaults here).
build_netcheck() {
	local out=$K8S_CACHE/bin/netcheck-local
	mkdir -p "$out"
	cd "$CLUSTER_DIR/netcheck"
	gobuild netcheck "$out/netcheck" -ldflags "-s -w" .
	write_stamp "$out" "$(addon_key netcheck "$(sha256sum main.go | cut -c1-12)")"
}

# --- run -------------------------------------------------------------------------------------
dpkg_ok=1
for p in "${DEBS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || dpkg_ok=0; done
((dpkg_ok)) || step "apt: ${DEBS[*]}" install_debs

stamp_ok "$ETCD_BIN" "etcd $ETCD_VERSION" || step "etcd $ETCD_VERSION (etcd, etcdctl)" build_etcd
stamp_ok "$K8S_SRC" "src $K8S_VERSION" || step "kubernetes $K8S_VERSION source tree" prepare_k8s_src

CONTROL_PLANE_CMDS=(kubectl kube-apiserver kube-controller-manager kube-scheduler)
NODE_CMDS=(kubelet kube-proxy)
cmds=("${CONTROL_PLANE_CMDS[@]}")
[ "$SCOPE" = control-plane ] || cmds+=("${NODE_CMDS[@]}")
for cmd in "${cmds[@]}"; do
	if [ -z "${K8S_BUILD_FORCE:-}" ] && [ -x "$K8S_BIN/$cmd" ]; then continue; fi
	step "$cmd $K8S_VERSION" build_k8s_cmd "$cmd"
done
if [ "$SCOPE" = control-plane ]; then
	log "control plane built in $(secs_since "$T_ALL")s (binaries in $K8S_BIN, $ETCD_BIN)"
	exit 0
fi
stamp_ok "$PAUSE_DIR" "pause $PAUSE_TAG" || step "pause $PAUSE_TAG (gcc -static)" build_pause

# name module version package [extra go build args]. Order: what the platform needs first (DNS,
# the in-pod checker, volumes, NetworkPolicy, Ingress), metrics-server (HPA metrics only) last.
ADDONS=(
	"coredns github.com/coredns/coredns $COREDNS_VERSION ."
	"local-path-provisioner github.com/rancher/local-path-provisioner $LOCAL_PATH_PROVISIONER_VERSION . -mod=mod"
	"kube-network-policies sigs.k8s.io/kube-network-policies $KUBE_NETWORK_POLICIES_VERSION ./cmd"
	"traefik github.com/traefik/traefik/v3 $TRAEFIK_VERSION ./cmd/traefik -mod=mod"
	"metrics-server sigs.k8s.io/metrics-server $METRICS_SERVER_VERSION ./cmd/metrics-server"
)
stamp_ok "$K8S_CACHE/bin/netcheck-local" "$(addon_key netcheck "$(sha256sum "$CLUSTER_DIR/netcheck/main.go" | cut -c1-12)")" ||
	step "netcheck (in-pod checks)" build_netcheck
for spec in "${ADDONS[@]}"; do
	read -r name module version pkg extra <<<"$spec"
	stamp_ok "$K8S_CACHE/bin/$name-$version" "$(addon_key "$name" "$version")" ||
		step "$name $version" build_addon "$name" "$module" "$version" "$pkg" ${extra:+"$extra"}
done

# Images: cheap (seconds), rebuilt whenever an input binary is newer than the image.
step_images() { bash "$CLUSTER_DIR/images.sh"; }
step "add-on images (mkimage.py)" step_images

log "all built in $(secs_since "$T_ALL")s (step times: $TIMES)"
