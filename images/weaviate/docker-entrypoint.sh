#!/bin/sh
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
# /run/secrets), so they are no container variable; the server reads only its variable, so it is
# exported to the server's process alone.
if [ -n "${AUTHENTICATION_APIKEY_ALLOWED_KEYS_FILE:-}" ]; then
  if [ -n "${AUTHENTICATION_APIKEY_ALLOWED_KEYS:-}" ]; then
    echo "weaviate: AUTHENTICATION_APIKEY_ALLOWED_KEYS and AUTHENTICATION_APIKEY_ALLOWED_KEYS_FILE are both set: set only one" >&2
    exit 1
  fi
  if [ ! -r "$AUTHENTICATION_APIKEY_ALLOWED_KEYS_FILE" ] || [ ! -s "$AUTHENTICATION_APIKEY_ALLOWED_KEYS_FILE" ]; then
    echo "weaviate: AUTHENTICATION_APIKEY_ALLOWED_KEYS_FILE names $AUTHENTICATION_APIKEY_ALLOWED_KEYS_FILE, which is missing, unreadable or empty" >&2
    exit 1
  fi
  AUTHENTICATION_APIKEY_ALLOWED_KEYS="$(cat "$AUTHENTICATION_APIKEY_ALLOWED_KEYS_FILE")"
  export AUTHENTICATION_APIKEY_ALLOWED_KEYS
  unset AUTHENTICATION_APIKEY_ALLOWED_KEYS_FILE
fi
if [ "${AUTHENTICATION_APIKEY_ENABLED:-false}" = true ] && [ -z "${AUTHENTICATION_APIKEY_ALLOWED_KEYS:-}" ]; then
  echo "weaviate: AUTHENTICATION_APIKEY_ENABLED=true needs AUTHENTICATION_APIKEY_ALLOWED_KEYS (refusing to start without a key)" >&2
  exit 1
fi
export CLUSTER_HOSTNAME RAFT_BOOTSTRAP_EXPECT GRPC_PORT CLUSTER_ADVERTISE_ADDR
exec /usr/local/bin/weaviate-server --host 0.0.0.0 --port "${PORT:-8080}" --scheme http "$@"
