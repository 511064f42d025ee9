#!/usr/bin/env bash
# Starts the local single-node Kubernetes cluster (binaries from build.sh; run it first, or let
# `npm run up -- local-k8s` do both). Idempotent: what already runs is left running.
#
#   bash scripts/cluster/start.sh                      # control plane + node + add-ons + images
#   bash scripts/cluster/start.sh --control-plane-only # etcd, apiserver, controller-manager, scheduler
#                                                      # (no node, no pods: admission/dry-run tests)
#   bash scripts/cluster/start.sh --import-images-only # (re)import the images into the running node
#
# Kubeconfig (admin): ${TRADING_CACHE_DIR:-$HOME/.cache/ai-trading}/k8s/run/pki/admin.kubeconfig,
# printed by `bash scripts/cluster/kubeconfig.sh`. The apiserver listens on 127.0.0.1:6443
# (and on the node IP 10.255.255.1, a /32 on lo, for pods; the guard chain rejects it from eth0).
#
# What the node changes on the host, all undone by stop.sh: the node IP on lo; the bridge
# aitrading-br0 and its veths; KUBE-*/CNI-* iptables chains (kube-proxy, CNI, the guard chain
# KUBE-AITRADING-GUARD) and kube-network-policies' nft table; the sysctls the kubelet and
# kube-proxy set (saved in run/sysctl.orig); kubepods cgroups; mounts under run/ and
# /run/ai-trading-k8s. A private containerd (own socket/root/state) runs the pods: Docker's own
# containerd is never touched.
#
# Env: K8S_IMPORT_DOCKER_IMAGES (default 1): import the platform's images from the local Docker
# engine (images/versions.json + the services image); K8S_START_TIMEOUT (default 180 s per wait).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../lib/local-images.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/local-images.sh"

MODE=full
case "${1:-}" in
	"") ;;
	--control-plane-only) MODE=control-plane ;;
	--import-images-only) MODE=import ;;
	*) die "usage: start.sh [--control-plane-only | --import-images-only]" ;;
esac
[ "$(id -u)" -eq 0 ] || die "start.sh needs root (containerd, kubelet, iptables)"
[ -z "$K8S_INSTANCE" ] || [ "$MODE" = control-plane ] || die "K8S_INSTANCE=$K8S_INSTANCE: a private instance is a control plane only (--control-plane-only)"
TIMEOUT=${K8S_START_TIMEOUT:-180}
T0=$(now_ns)
mkdir -p "$RUN_DIR/logs" "$PKI_DIR"
exec 9>"$START_LOCK"
# shellcheck source=../lib/locks.sh
source "$ROOT/scripts/lib/locks.sh"
wait_for_lock 9 "$START_LOCK" "another start or stop of the cluster"

need_bins() {
	local b hint=""
	[ "$MODE" = control-plane ] && hint=" --control-plane"
	for b in "$@"; do [ -x "$b" ] || die "missing $b: run bash scripts/cluster/build.sh$hint"; done
}
need_bins "$ETCD_BIN/etcd" "$K8S_BIN/kube-apiserver" "$K8S_BIN/kube-controller-manager" "$K8S_BIN/kube-scheduler" "$K8S_BIN/kubectl"

# timed LABEL CMD...: one progress line with the elapsed time of the step.
timed() {
	local label=$1 t
	shift
	t=$(now_ns)
	"$@"
	printf '[cluster] %-44s %6ss\n' "$label" "$(secs_since "$t")" >&2
}

running() { [ -f "$RUN_DIR/$1.pid" ] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null; }
# launch NAME CMD...: a detached daemon, its pid in run/NAME.pid, its output in run/logs/NAME.log.
launch() {
	local n=$1
	shift
	running "$n" && return 0
	# 9>&-: the daemon must not inherit the start lock (the next start/stop would wait forever).
	setsid "$@" >>"$RUN_DIR/logs/$n.log" 2>&1 </dev/null 9>&- &
	echo $! >"$RUN_DIR/$n.pid"
}
# The last lines of daemon $1's own log, to stderr: a private instance's run directory (and its
# logs) is removed by whoever stops it, so the caller's report is all that is left.
# An `if`, not `[ -f ] && ...`: a wait with no log of its own ("node Ready") must still reach its die
# (under set -e a function returning 1 would end the script silently).
log_tail() {
	if [ -f "$RUN_DIR/logs/$1.log" ]; then tail -n 10 "$RUN_DIR/logs/$1.log" | cut -c1-280 | sed "s/^/[cluster] $1: /" >&2; fi
}
# wait_for DESC CMD...: polls CMD every second up to $TIMEOUT s. When DESC is a daemon started by
# launch, its exit ends the wait at once (a port taken, a bad flag): no point polling a dead process.
# The $TIMEOUT s are of the clock, and each probe is bounded too (timeout; a shell function such as
# kubectl_ by its own --request-timeout): before, a probe that hung (curl to a daemon that accepts
# and never answers, as a stuck or starved apiserver does) held the start for ever, and on a loaded
# machine each second of the count took several.
wait_for() {
	local d=$1 deadline=$((SECONDS + TIMEOUT)) left
	shift
	while ((SECONDS < deadline)); do
		left=$((deadline - SECONDS))
		if declare -F "$1" >/dev/null; then
			"$@" >/dev/null 2>&1 && return 0
		else
			timeout -k 5 "$((left < 30 ? left : 30))" "$@" >/dev/null 2>&1 && return 0
		fi
		if [ -f "$RUN_DIR/$d.pid" ] && ! running "$d"; then
			log_tail "$d"
			die "$d exited before it was ready (logs: $RUN_DIR/logs/)"
		fi
		sleep 1
	done
	log_tail "$d"
	die "$d not ready after ${TIMEOUT}s (logs: $RUN_DIR/logs/)"
}

# --- PKI: a throwaway CA, serving and client certificates, kubeconfigs (generated once) ------
gen_pki() {
	local host
	host=$(hostname)
	cd "$PKI_DIR"
	[ -f ca.crt ] || openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=ai-trading-local-k8s-ca" 2>/dev/null
	sign() { # name subject [subjectAltName]: a CA-signed key pair (server+client when it has SANs)
		local n=$1 subj=$2 sans=${3:-}
		[ -f "$n.crt" ] && return 0
		openssl req -newkey rsa:2048 -nodes -keyout "$n.key" -out "$n.csr" -subj "$subj" 2>/dev/null
		{
			echo "basicConstraints=CA:FALSE"
			echo "keyUsage=critical,digitalSignature,keyEncipherment"
			if [ -n "$sans" ]; then
				echo "extendedKeyUsage=serverAuth,clientAuth"
				echo "subjectAltName=$sans"
			else echo "extendedKeyUsage=clientAuth"; fi
		} >"$n.ext"
		openssl x509 -req -in "$n.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$n.crt" -days 3650 -extfile "$n.ext" 2>/dev/null
		rm -f "$n.csr" "$n.ext"
	}
	sign apiserver "/CN=kube-apiserver" "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1,IP:$NODE_IP"
	sign admin "/O=system:masters/CN=kubernetes-admin"
	sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
	sign controller-manager "/CN=system:kube-controller-manager"
	sign scheduler "/CN=system:kube-scheduler"
	sign kube-proxy "/O=system:node-proxier/CN=system:kube-proxy"
	sign kubelet "/O=system:nodes/CN=system:node:$host" "DNS:$host,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP"
	sign front-proxy-client "/CN=front-proxy-client"
	[ -f sa.key ] || { openssl genrsa -out sa.key 2048 2>/dev/null && openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null; }
	chmod 600 ./*.key
	kubeconfig() { # file user
		cat >"$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ai-trading-local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $PKI_DIR/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI_DIR/$1.crt
    client-key: $PKI_DIR/$1.key
contexts:
- name: ai-trading-local
  context: {cluster: ai-trading-local, user: $2}
current-context: ai-trading-local
EOF
		chmod 600 "$1.kubeconfig"
	}
	kubeconfig admin kubernetes-admin
	kubeconfig controller-manager system:kube-controller-manager
	kubeconfig scheduler system:kube-scheduler
	kubeconfig kube-proxy system:kube-proxy
	kubeconfig kubelet "system:node:$host"
	cd - >/dev/null
}

# --- host network: the node IP on lo, the guard chain -----------------------------------------
# The apiserver binds 0.0.0.0 (pods reach it on the node IP through the `kubernetes` Service;
# advertising 127.0.0.1 leaves that Service without endpoints). The guard rejects it from the
# default-route interface, and rejects Service-CIDR traffic kube-proxy has not DNATed yet
# (this sandbox answers any IP:80/443 itself, which poisoned the aggregator's connections).
node_ip_on_lo() { ip -4 addr show dev lo | grep -qF " $NODE_IP/" || ip addr add "$NODE_IP/32" dev lo; }
guard_chain() {
	local defif
	defif=$(ip -4 route show default | awk '{print $5; exit}')
	[ -n "$defif" ] || return 0
	iptables -N KUBE-AITRADING-GUARD 2>/dev/null || iptables -F KUBE-AITRADING-GUARD
	iptables -A KUBE-AITRADING-GUARD -i "$defif" -p tcp --dport "$APISERVER_PORT" -j REJECT --reject-with tcp-reset
	iptables -A KUBE-AITRADING-GUARD -o "$defif" -d "$SERVICE_CIDR" -p tcp -j REJECT --reject-with tcp-reset
	iptables -A KUBE-AITRADING-GUARD -o "$defif" -d "$SERVICE_CIDR" -j REJECT
	local c
	for c in INPUT OUTPUT FORWARD; do
		iptables -C "$c" -j KUBE-AITRADING-GUARD 2>/dev/null || iptables -I "$c" -j KUBE-AITRADING-GUARD
	done
}

# --- control plane ---------------------------------------------------------------------------
start_etcd() {
	local c=http://127.0.0.1:$ETCD_PORT p=http://127.0.0.1:$ETCD_PEER_PORT
	launch etcd "$ETCD_BIN/etcd" --name ai-trading --data-dir "$RUN_DIR/etcd" \
		--listen-client-urls "$c" --advertise-client-urls "$c" \
		--listen-peer-urls "$p" --initial-advertise-peer-urls "$p" \
		--initial-cluster "ai-trading=$p" --listen-metrics-urls "http://127.0.0.1:$ETCD_METRICS_PORT" \
		--unsafe-no-fsync=true --quota-backend-bytes=2147483648 --log-level=warn
	wait_for etcd curl -fsS "http://127.0.0.1:$ETCD_METRICS_PORT/health"
}
start_apiserver() {
	local p=$PKI_DIR bind=0.0.0.0 advertise=$NODE_IP
	# A private instance has no node and no pods: loopback only.
	[ -z "$K8S_INSTANCE" ] || { bind=127.0.0.1 advertise=127.0.0.1; }
	launch kube-apiserver "$K8S_BIN/kube-apiserver" \
		--etcd-servers="http://127.0.0.1:$ETCD_PORT" \
		--bind-address="$bind" --advertise-address="$advertise" --secure-port="$APISERVER_PORT" \
		--tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
		--client-ca-file="$p/ca.crt" \
		--kubelet-client-certificate="$p/apiserver-kubelet-client.crt" --kubelet-client-key="$p/apiserver-kubelet-client.key" \
		--kubelet-certificate-authority="$p/ca.crt" --kubelet-preferred-address-types=InternalIP,Hostname \
		--requestheader-client-ca-file="$p/ca.crt" --requestheader-allowed-names=front-proxy-client \
		--requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
		--requestheader-extra-headers-prefix=X-Remote-Extra- \
		--proxy-client-cert-file="$p/front-proxy-client.crt" --proxy-client-key-file="$p/front-proxy-client.key" \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key" \
		--service-cluster-ip-range="$SERVICE_CIDR" \
		--authorization-mode=Node,RBAC \
		--enable-admission-plugins=NodeRestriction \
		--allow-privileged=true --profiling=false
	wait_for kube-apiserver curl -fsS --cacert "$p/ca.crt" "https://127.0.0.1:$APISERVER_PORT/readyz"
}
start_controllers() {
	local p=$PKI_DIR
	launch kube-controller-manager "$K8S_BIN/kube-controller-manager" \
		--kubeconfig="$p/controller-manager.kubeconfig" \
		--authentication-kubeconfig="$p/controller-manager.kubeconfig" --authorization-kubeconfig="$p/controller-manager.kubeconfig" \
		--bind-address=127.0.0.1 --secure-port="$CONTROLLER_MANAGER_PORT" --leader-elect=false \
		--use-service-account-credentials=true \
		--service-account-private-key-file="$p/sa.key" --root-ca-file="$p/ca.crt" \
		--cluster-signing-cert-file="$p/ca.crt" --cluster-signing-key-file="$p/ca.key" \
		--service-cluster-ip-range="$SERVICE_CIDR" --cluster-cidr="$CLUSTER_CIDR" --allocate-node-cidrs=true \
		--controllers='*,bootstrapsigner,tokencleaner'
	launch kube-scheduler "$K8S_BIN/kube-scheduler" \
		--kubeconfig="$p/scheduler.kubeconfig" \
		--authentication-kubeconfig="$p/scheduler.kubeconfig" --authorization-kubeconfig="$p/scheduler.kubeconfig" \
		--bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --leader-elect=false
	wait_for kube-controller-manager curl -fsSk "https://127.0.0.1:$CONTROLLER_MANAGER_PORT/healthz"
	wait_for kube-scheduler curl -fsSk "https://127.0.0.1:$SCHEDULER_PORT/healthz"
	# Pods need the `default` ServiceAccount the controller-manager creates.
	wait_for "default ServiceAccount" kubectl_ --request-timeout=20s -n default get serviceaccount default
}

# --- node ------------------------------------------------------------------------------------
# Sysctls the kubelet (overcommit, panic) and kube-proxy (route_localnet, conntrack) change.
SYSCTLS=(vm/overcommit_memory kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes
	net/ipv4/ip_forward net/ipv4/conf/all/route_localnet net/bridge/bridge-nf-call-iptables
	net/bridge/bridge-nf-call-ip6tables net/netfilter/nf_conntrack_max
	net/netfilter/nf_conntrack_tcp_timeout_established net/netfilter/nf_conntrack_tcp_timeout_close_wait)
save_sysctls() {
	[ -f "$RUN_DIR/sysctl.orig" ] && return 0
	local f
	for f in "${SYSCTLS[@]}"; do [ -r "/proc/sys/$f" ] && echo "$f=$(cat "/proc/sys/$f")"; done >"$RUN_DIR/sysctl.orig.tmp"
	mv "$RUN_DIR/sysctl.orig.tmp" "$RUN_DIR/sysctl.orig"
}

# /run/netns as a shared mount point of its own before any pod's network namespace is mounted in
# it. The first `ip netns add` on a host (the NetworkPolicy e2e test's fake internet, an operator)
# bind-mounts /run/netns onto itself when it is a plain directory: that hid the pods' cni-* mounts
# below it, containerd's unmount then missed them and every pod deleted afterwards stayed
# Terminating ("remove netns: unlinkat ...: device or resource busy"), so `pulumi destroy` hung
# (e2e:k8s on a fresh machine, 2026-12-01). iproute2 does the same as this when it finds no mount.
shared_netns_dir() {
	mkdir -p /run/netns
	mountpoint -q /run/netns && return 0
	mount --bind /run/netns /run/netns && mount --make-shared /run/netns && touch "$RUN_DIR/netns-mount"
}

start_containerd() {
	mkdir -p "$RUN_DIR/containerd" "$RUN_DIR/cni/net.d" "$CONTAINERD_STATE"
	shared_netns_dir || die "cannot make /run/netns a shared mount point"
	cat >"$RUN_DIR/containerd/config.toml" <<EOF
version = 2
root = "$RUN_DIR/containerd/root"
state = "$CONTAINERD_STATE/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_STATE/containerd.sock.ttrpc"
[debug]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/local/pause:$PAUSE_TAG"
  enable_unprivileged_ports = true
  # root here lacks CAP_SYS_RESOURCE: a negative oom_score_adj (pause: -998) makes runc fail
  # ("can't get final child's PID from pipe: EOF"); clamp it to containerd's own score.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RUN_DIR/cni/net.d"
EOF
	# The firewall plugin: Docker sets the FORWARD policy to DROP and br_netfilter is on, so
	# pod traffic needs the CNI-FORWARD accepts it adds per pod IP.
	cat >"$RUN_DIR/cni/net.d/10-$CNI_NETWORK.conflist" <<EOF
{ "cniVersion": "0.4.0", "name": "$CNI_NETWORK",
  "plugins": [
    { "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": "$RUN_DIR/cni/ipam" } },
    { "type": "portmap", "capabilities": {"portMappings": true} },
    { "type": "firewall", "backend": "iptables" },
    { "type": "loopback" } ] }
EOF
	launch containerd /usr/bin/containerd --config "$RUN_DIR/containerd/config.toml"
	wait_for containerd ctr -a "$CONTAINERD_SOCK" version
}

# still_imported STAMP KEY: the stamp holds KEY and, after it, the image names its import made; true
# only while containerd still has every one of them. The kubelet's image garbage collection removes
# images when the disk runs low (eviction), and no registry here gives them back: trusting the stamp
# alone left pods in ContainerCreating for ever ("failed to pull ... docker.io/local/pause:3.10").
# A stamp without names (older, or an import whose output named none) is not trusted.
still_imported() {
	local stamp=$1 key=$2 present name names=0
	[ -f "$stamp" ] && [ "$(head -1 "$stamp")" = "$key" ] || return 1
	present=$(ctr_ images ls -q)
	while read -r name; do
		names=$((names + 1))
		grep -qxF "$name" <<<"$present" || return 1
	done < <(tail -n +2 "$stamp")
	((names > 0))
}

# import_into STAMP KEY CMD...: runs the import CMD (ctr images import) and records KEY and the names
# it unpacked ("unpacking docker.io/local/pause:3.10 (sha256:...)...done") in STAMP.
import_into() {
	local stamp=$1 key=$2 out
	shift 2
	out=$("$@")
	mkdir -p "$RUN_DIR/imported"
	{ echo "$key"; sed -n 's/^unpacking \([^ ]*\) .*/\1/p' <<<"$out"; } >"$stamp"
}

# import_tar FILE: imports a docker-archive into the node's containerd once per content hash.
import_tar() {
	local f=$1 key stamp
	key=$(stat -c '%s-%Y' "$f")
	stamp=$RUN_DIR/imported/$(basename "$f")
	still_imported "$stamp" "$key" && return 0
	import_into "$stamp" "$key" ctr_ images import "$f"
}
import_addon_images() {
	bash "$CLUSTER_DIR/images.sh"
	local f
	for f in "$IMAGES_DIR"/*.tar; do import_tar "$f"; done
}

# The platform's images from the local Docker engine (built by scripts/images/build-images.sh and
# by the services image build): docker save | ctr import, once per image ID. Of the datastore
# builds (images/<name>/), only the tags this clone's images/versions.json names: their tags carry
# a content key (scripts/images/image-tags.sh), and the engine may hold other clones' builds too.
import_docker_images() {
	[ "${K8S_IMPORT_DOCKER_IMAGES:-1}" = 1 ] || return 0
	if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
		log "no Docker engine: platform images not imported"
		return 0
	fi
	local refs=() ref id stamp name current
	mapfile -t refs < <(docker image ls --format '{{.Repository}}:{{.Tag}}' | grep -E "^$LOCAL_REPOSITORY/" | grep -vE "<none>|^$LOCAL_REPOSITORY/debian:" || true)
	current=$(local_image_tags "$ROOT")
	mkdir -p "$RUN_DIR/imported"
	for ref in "${refs[@]}"; do
		name=${ref#"$LOCAL_REPOSITORY/"}
		if [ -f "$ROOT/images/${name%%:*}/Dockerfile" ] && ! grep -qxF "$name" <<<"$current"; then continue; fi
		id=$(docker image inspect -f '{{.Id}}' "$ref")
		stamp=$RUN_DIR/imported/docker-$(echo "$ref" | tr '/:' '__')
		still_imported "$stamp" "$id" && continue
		docker save "$ref" | import_into "$stamp" "$id" ctr_ images import -
		log "imported $ref"
	done
}

start_kubelet() {
	local host
	host=$(hostname)
	mkdir -p "$RUN_DIR/kubelet"
	cat >"$RUN_DIR/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI_DIR/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI_DIR/kubelet.crt
tlsPrivateKeyFile: $PKI_DIR/kubelet.key
cgroupDriver: cgroupfs
# cgroup v1 on this host: kubelet 1.34 still runs on it when told to.
failCgroupV1: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
failSwapOn: false
clusterDomain: cluster.local
clusterDNS: [$CLUSTER_DNS_IP]
resolvConf: /etc/resolv.conf
podCIDR: $POD_CIDR
maxPods: 200
serializeImagePulls: false
evictionHard: {memory.available: "100Mi", nodefs.available: "2%", imagefs.available: "2%"}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
EOF
	launch kubelet "$K8S_BIN/kubelet" --config="$RUN_DIR/kubelet/config.yaml" --kubeconfig="$PKI_DIR/kubelet.kubeconfig" \
		--root-dir="$RUN_DIR/kubelet/root" --cert-dir="$RUN_DIR/kubelet/pki" --node-ip="$NODE_IP" --hostname-override="$host" --v=1
	wait_for kubelet curl -fsS http://127.0.0.1:10248/healthz
	launch kube-proxy "$K8S_BIN/kube-proxy" --kubeconfig="$PKI_DIR/kube-proxy.kubeconfig" --hostname-override="$host" \
		--proxy-mode=iptables --cluster-cidr="$CLUSTER_CIDR" --bind-address="$NODE_IP" \
		--healthz-bind-address=127.0.0.1:10256 --metrics-bind-address=127.0.0.1:10249
	wait_for kube-proxy curl -fsS http://127.0.0.1:10256/healthz
	wait_for "node Ready" kubectl_ --request-timeout=20s wait --for=condition=Ready "node/$host" --timeout=5s
}

# --- add-ons ---------------------------------------------------------------------------------
deploy_addons() {
	local m=$CLUSTER_DIR/manifests name image kind obj missing=()
	mkdir -p "$K8S_CACHE/volumes"
	# name image-tar kind/namespace/object to wait for
	local addons=(
		"coredns coredns deploy/kube-system/coredns"
		"kube-network-policies kube-network-policies ds/kube-system/kube-network-policies"
		"local-path-storage local-path-provisioner deploy/local-path-storage/local-path-provisioner"
		"metrics-server metrics-server deploy/kube-system/metrics-server"
		"traefik traefik deploy/traefik/traefik"
	)
	for a in "${addons[@]}"; do
		read -r name image obj <<<"$a"
		# An add-on whose image is not built yet (build.sh still running) is left out, and said so.
		if [ ! -f "$IMAGES_DIR/$image.tar" ]; then missing+=("$name"); continue; fi
		# The folder escaped for sed's replacement: a '#', '&' or '\' in TRADING_CACHE_DIR broke the command or the path.
		sed "s#@LOCAL_PATH_DIR@#$(printf '%s' "$K8S_CACHE/volumes" | sed 's/[#&\\]/\\&/g')#" "$m/$name.yaml" | kubectl_ apply -f - >/dev/null
	done
	for a in "${addons[@]}"; do
		read -r name image obj <<<"$a"
		[ -f "$IMAGES_DIR/$image.tar" ] || continue
		IFS=/ read -r kind ns obj <<<"$obj"
		kubectl_ -n "$ns" rollout status "$kind/$obj" --timeout="${TIMEOUT}s" >/dev/null || {
			# "timed out waiting for the condition" alone says nothing: name the node's pressure and the pods.
			kubectl_ get node -o jsonpath='{range .items[*].status.conditions[?(@.status=="True")]}{.type}: {.message}{"\n"}{end}' >&2 || true
			kubectl_ get pods -A --field-selector=status.phase!=Running >&2 || true
			die "add-on $name did not roll out in ${TIMEOUT}s (K8S_START_TIMEOUT); a DiskPressure above evicts pods: free disk space"
		}
	done
	((${#missing[@]} == 0)) || log "WARNING: add-ons not deployed, their images are not built yet: ${missing[*]} (run build.sh, then start.sh again)"
}

if [ "$MODE" = import ]; then
	[ -S "$CONTAINERD_SOCK" ] || die "the node's containerd is not running (start.sh first)"
	timed "add-on images imported" import_addon_images
	timed "platform images imported (docker save)" import_docker_images
	exit 0
fi
# The kubelet evicts pods and taints the node when its disk runs low (evictionHard below), and the
# image imports need a few GB: a node is refused short of K8S_MIN_FREE_GB before anything starts,
# rather than timing out later with an add-on evicted.
if [ "$MODE" != control-plane ]; then
	free_gb=$(df --output=avail -BG "$K8S_CACHE" | tail -1 | tr -dc 0-9)
	((free_gb >= ${K8S_MIN_FREE_GB:-10})) || die "only ${free_gb} GB free on the disk of $K8S_CACHE; the node needs ${K8S_MIN_FREE_GB:-10} GB (K8S_MIN_FREE_GB): free space (old clones, docker image prune) and start again"
fi
timed "PKI and kubeconfigs" gen_pki
if [ -z "$K8S_INSTANCE" ]; then
	node_ip_on_lo
	guard_chain
fi
timed "etcd" start_etcd
timed "kube-apiserver" start_apiserver
timed "controller-manager, scheduler" start_controllers
echo "$MODE" >"$RUN_DIR/mode"
if [ "$MODE" = control-plane ]; then
	log "control plane up in $(secs_since "$T0")s; KUBECONFIG=$KUBECONFIG_PATH"
	exit 0
fi
need_bins "$K8S_BIN/kubelet" "$K8S_BIN/kube-proxy" "$K8S_CACHE/bin/pause-$PAUSE_TAG/pause"
for b in containerd runc conntrack iptables; do command -v "$b" >/dev/null || die "$b missing: run bash scripts/cluster/build.sh"; done
save_sysctls
timed "containerd (private)" start_containerd
timed "add-on images imported" import_addon_images
timed "platform images imported (docker save)" import_docker_images
timed "kubelet, kube-proxy, node Ready" start_kubelet
timed "add-ons rolled out" deploy_addons
log "cluster up in $(secs_since "$T0")s; KUBECONFIG=$KUBECONFIG_PATH; ingress on https://$NODE_IP"
