#!/usr/bin/env bash
# Packs the cluster's add-on binaries (built by build.sh) into one-layer docker-archive images
# ($K8S_CACHE/images/<name>.tar, no registry, no Docker needed), imported into the node's
# containerd by start.sh. An image is rebuilt only when one of its input binaries is newer.
# The image references are the ones the manifests in scripts/cluster/manifests/ use.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
mkdir -p "$IMAGES_DIR"
MK=(python3 "$CLUSTER_DIR/mkimage.py")
B=$K8S_CACHE/bin
CA=/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:0644
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || die "no $BUSYBOX (Debian busybox-static; run build.sh)"

# image FILE REF INPUT... -- mkimage args: rebuilds FILE when an INPUT is newer (or FILE is missing).
image() {
	local file=$IMAGES_DIR/$1 ref=$2 stale=0 i
	shift 2
	local inputs=()
	while [ "$1" != -- ]; do inputs+=("$1"); shift; done
	shift
	[ -f "$file" ] || stale=1
	for i in "${inputs[@]}" "$CLUSTER_DIR/mkimage.py"; do
		# Not built yet (build.sh still running): skipped; start.sh deploys only add-ons with an image.
		[ -e "$i" ] || { log "image $ref skipped: $i not built yet"; return 0; }
		[ "$i" -nt "$file" ] && stale=1
	done
	((stale)) || return 0
	"${MK[@]}" "$file.tmp" "$ref" "$@" >/dev/null
	mv "$file.tmp" "$file"
	log "image $ref"
}

image pause.tar "local/pause:$PAUSE_TAG" "$B/pause-$PAUSE_TAG/pause" -- \
	--file "$B/pause-$PAUSE_TAG/pause:/pause" --entrypoint '["/pause"]'
image busybox.tar local/busybox:static "$BUSYBOX" -- \
	--file "$BUSYBOX:/bin/busybox" --file "$BUSYBOX:/bin/sh" --entrypoint '["/bin/busybox"]'
image netcheck.tar local/netcheck:dev "$B/netcheck-local/netcheck" -- \
	--file "$B/netcheck-local/netcheck:/netcheck" --entrypoint '["/netcheck"]' --user 65534
image coredns.tar "local/coredns:$COREDNS_VERSION" "$B/coredns-$COREDNS_VERSION/coredns" -- \
	--file "$B/coredns-$COREDNS_VERSION/coredns:/coredns" --entrypoint '["/coredns"]'
image traefik.tar "local/traefik:$TRAEFIK_VERSION-local" "$B/traefik-$TRAEFIK_VERSION/traefik" -- \
	--file "$B/traefik-$TRAEFIK_VERSION/traefik:/traefik" --file "$CA" --entrypoint '["/traefik"]'
image local-path-provisioner.tar "local/local-path-provisioner:$LOCAL_PATH_PROVISIONER_VERSION" \
	"$B/local-path-provisioner-$LOCAL_PATH_PROVISIONER_VERSION/local-path-provisioner" -- \
	--file "$B/local-path-provisioner-$LOCAL_PATH_PROVISIONER_VERSION/local-path-provisioner:/usr/bin/local-path-provisioner" \
	--entrypoint '["/usr/bin/local-path-provisioner"]'
# CMD, not ENTRYPOINT: the upstream DaemonSet passes /bin/netpol as args[0].
image kube-network-policies.tar "local/kube-network-policies:$KUBE_NETWORK_POLICIES_VERSION-local" \
	"$B/kube-network-policies-$KUBE_NETWORK_POLICIES_VERSION/kube-network-policies" -- \
	--file "$B/kube-network-policies-$KUBE_NETWORK_POLICIES_VERSION/kube-network-policies:/bin/netpol" --cmd '["/bin/netpol"]'
image metrics-server.tar "local/metrics-server:$METRICS_SERVER_VERSION" "$B/metrics-server-$METRICS_SERVER_VERSION/metrics-server" -- \
	--file "$B/metrics-server-$METRICS_SERVER_VERSION/metrics-server:/metrics-server" --entrypoint '["/metrics-server"]'
