#!/bin/bash
# nginx entrypoint: generates a self-signed certificate when /etc/nginx/tls/tls.{crt,key} are
# missing, checks the configuration, then runs nginx in the foreground as the current (non-root) user.
set -euo pipefail
if [ "${1:-nginx}" != nginx ]; then exec "$@"; fi

CONF=/etc/nginx/nginx.conf
TLS_DIR="${TLS_DIR:-/etc/nginx/tls}"
CN="${TLS_COMMON_NAME:-localhost}"
case "$CN" in *[!A-Za-z0-9.*-]*|"") echo "FATAL: TLS_COMMON_NAME must be a host name" >&2; exit 1;; esac

# Only a configuration that serves TLS needs the certificate: edge-errors (components/edge/error-pages.ts)
# answers plain HTTP behind the ingress controller, and exited 1 here on the cluster (read-only root).
needs_tls=0
grep -qE '^[[:space:]]*ssl_certificate' "$CONF" && needs_tls=1
if [ "$needs_tls" = 1 ] && { [ ! -s "$TLS_DIR/tls.crt" ] || [ ! -s "$TLS_DIR/tls.key" ]; }; then
  if [ ! -w "$TLS_DIR" ]; then
    echo "FATAL: $TLS_DIR/tls.crt or tls.key missing and $TLS_DIR is not writable" >&2
    exit 1
  fi
  echo "generating a self-signed certificate for CN=$CN in $TLS_DIR"
  umask 077
  san="DNS:$CN"; [ "$CN" = localhost ] || san="$san,DNS:localhost"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
    -subj "/CN=$CN" -addext "subjectAltName=$san,IP:127.0.0.1" \
    -keyout "$TLS_DIR/tls.key" -out "$TLS_DIR/tls.crt" 2>/dev/null
  chmod 644 "$TLS_DIR/tls.crt"
  umask 022
fi

# The compiled-in pid file (/run/nginx.pid) is not writable by a non-root user: point it at
# /run/nginx unless the configuration sets its own.
globals=()
grep -qE '^[[:space:]]*pid[[:space:]]' "$CONF" || globals+=("pid /run/nginx/nginx.pid;")
grep -qE '^[[:space:]]*daemon[[:space:]]' "$CONF" || globals+=("daemon off;")
args=(-c "$CONF")
[ "${#globals[@]}" -eq 0 ] || args+=(-g "${globals[*]}")
nginx -t -q "${args[@]}"
shift || true
exec nginx "${args[@]}" "$@"
