#!/usr/bin/env bash
# Issues the TLS certificate of the local cluster's Ingress (no cert-manager controller can be
# built here): a CA of its own (kept apart from the cluster CA) and a certificate for HOST signed
# by it, in $K8S_CACHE/run/pki/ingress/<HOST>/{ca.crt,tls.crt,tls.key}. Prints that directory.
# The stack provides it as its TLS secret (trading:tlsCertificate / trading:tlsPrivateKey, set by
# scripts/up.sh for local-k8s); clients verify against ca.crt. Idempotent.
#   bash scripts/cluster/ingress-cert.sh trading.local-k8s.test
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HOST=${1:?usage: ingress-cert.sh HOST}
[[ "$HOST" =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] || die "not a host name: $HOST"
CA_DIR=$PKI_DIR/ingress
DIR=$CA_DIR/$HOST
mkdir -p "$DIR"
umask 077
if [ ! -f "$CA_DIR/ca.crt" ]; then
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$CA_DIR/ca.key" -out "$CA_DIR/ca.crt" -days 3650 \
		-subj "/CN=ai-trading local-k8s ingress CA" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
if [ ! -f "$DIR/tls.crt" ]; then
	openssl req -newkey rsa:2048 -nodes -keyout "$DIR/tls.key" -out "$DIR/tls.csr" -subj "/CN=$HOST" 2>/dev/null
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s\n' "$HOST" >"$DIR/tls.ext"
	openssl x509 -req -in "$DIR/tls.csr" -CA "$CA_DIR/ca.crt" -CAkey "$CA_DIR/ca.key" -CAcreateserial \
		-out "$DIR/tls.crt" -days 825 -extfile "$DIR/tls.ext" 2>/dev/null
	rm -f "$DIR/tls.csr" "$DIR/tls.ext"
fi
cp "$CA_DIR/ca.crt" "$DIR/ca.crt"
chmod 644 "$DIR/ca.crt" "$DIR/tls.crt"
echo "$DIR"
