#!/bin/bash
# PostgreSQL entrypoint: refuses to start without POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE); initialises the cluster on
# first start with scram-sha-256 auth; then runs postgres in the foreground on 0.0.0.0:5432.
set -euo pipefail

if [ "${1:-postgres}" != postgres ]; then exec "$@"; fi

# A secret may come as a file instead (NAME_FILE): file_env, the one source in images/lib/file-env.sh.
# shellcheck source=../lib/file-env.sh
source /usr/local/lib/ai-trading/file-env.sh
file_env POSTGRES_PASSWORD
if [ -z "${POSTGRES_PASSWORD:-}" ]; then
  echo "FATAL: POSTGRES_PASSWORD is not set; this image has no default password" >&2
  exit 1
fi
POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGDATA

# PGDATA may be a subfolder of the volume (its root can belong to root): create it, owned by us.
mkdir -p "$PGDATA" 2>/dev/null || true
if [ ! -w "$PGDATA" ]; then
  echo "FATAL: $PGDATA is not writable by uid $(id -u); use a named volume or chown it to $(id -u)" >&2
  exit 1
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "initialising PostgreSQL cluster in $PGDATA (user $POSTGRES_USER, db $POSTGRES_DB)"
  chmod 700 "$PGDATA" 2>/dev/null || true
  # The password through a pipe (printf is a builtin: on no command line), never a file: the
  # temporary file this was (mktemp, removed after initdb) stayed in /tmp when initdb failed.
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  cat >"$PGDATA/pg_hba.conf" <<HBA
# TYPE  DATABASE  USER  ADDRESS     METHOD
local   all       all               scram-sha-256
host    all       all   0.0.0.0/0   scram-sha-256
host    all       all   ::/0        scram-sha-256
HBA
  cat >>"$PGDATA/postgresql.conf" <<CONF

# ai-trading image defaults
listen_addresses = '*'
port = 5432
password_encryption = scram-sha-256
jit = off
unix_socket_directories = '/var/run/postgresql'
log_destination = 'stderr'
logging_collector = off
CONF
  export PGPASSWORD="$POSTGRES_PASSWORD"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/var/run/postgresql" -w start >/dev/null
  if [ "$POSTGRES_DB" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -q -h /var/run/postgresql -U "$POSTGRES_USER" -d postgres \
      -v db="$POSTGRES_DB" <<'SQL'
CREATE DATABASE :"db";
SQL
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case "$f" in
      *.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 -q -h /var/run/postgresql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f "$f" ;;
      *.sh)  echo "running $f"; bash "$f" ;;
      *)     echo "ignoring $f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  unset PGPASSWORD
  echo "PostgreSQL init done"
fi

unset POSTGRES_PASSWORD
shift || true
exec postgres -D "$PGDATA" "$@"
