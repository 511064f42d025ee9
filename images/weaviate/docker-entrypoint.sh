#!/bin/bash
# Single-node defaults for Weaviate in a container. The cluster layer (memberlist + Raft) needs an
# IPv4 address to advertise: with an IPv6 address it dies with "too many colons", so the first
# IPv4 address of the container is used unless CLUSTER_ADVERTISE_ADDR is given.
set -eu
: "${CLUSTER_HOSTNAME:=node1}"
: "${RAFT_BOOTSTRAP_EXPECT:=1}"
: "${GRPC_PORT:=50051}"
if [ -z "${CLUSTER_ADVERTISE_ADDR:-}" ]; then
  CLUSTER_ADVERTISE_ADDR="$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -m1 -E '^[0-9]+(\.[0-9]+){3}$' || true)"
  [ -n "$CLUSTER_ADVERTISE_ADDR" ] || CLUSTER_ADVERTISE_ADDR=127.0.0.1
fi
# The keys may come as a file (AUTHENTICATION_APIKEY_ALLOWED_KEYS_FILE: the Docker runtime's
# /run/secrets), so they are no container variable: file_env, the one source in images/lib/file-env.sh.
# The server reads only its variable, so it is exported to the server's process alone.
# shellcheck source=../lib/file-env.sh
source /usr/local/lib/ai-trading/file-env.sh
file_env AUTHENTICATION_APIKEY_ALLOWED_KEYS
[ -z "${AUTHENTICATION_APIKEY_ALLOWED_KEYS:-}" ] || export AUTHENTICATION_APIKEY_ALLOWED_KEYS
if [ "${AUTHENTICATION_APIKEY_ENABLED:-false}" = true ] && [ -z "${AUTHENTICATION_APIKEY_ALLOWED_KEYS:-}" ]; then
  echo "weaviate: AUTHENTICATION_APIKEY_ENABLED=true needs AUTHENTICATION_APIKEY_ALLOWED_KEYS (refusing to start without a key)" >&2
  exit 1
fi
export CLUSTER_HOSTNAME RAFT_BOOTSTRAP_EXPECT GRPC_PORT CLUSTER_ADVERTISE_ADDR
exec /usr/local/bin/weaviate-server --host 0.0.0.0 --port "${PORT:-8080}" --scheme http "$@"
