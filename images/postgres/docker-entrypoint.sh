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
# Given as a variable (Kubernetes' secretKeyRef) it is exported: no child inherits it from here on,
# neither the first start's temporary server nor its clients (initdb reads it from a pipe below).
export -n POSTGRES_PASSWORD
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
  # The temporary server (Unix socket only) takes this image's user as POSTGRES_USER by peer
  # authentication, through an hba and ident file of its own: its clients (psql, the init scripts)
  # need no password, so none is in any process's environment (before, PGPASSWORD was exported to
  # the temporary server and every init step: /proc/<pid>/environ). The two files hold no secret.
  init_conf="$(mktemp -d)"
  trap 'rm -rf "$init_conf"' EXIT
  printf 'local all all peer map=init\n' >"$init_conf/hba.conf"
  # Quoted names, a double quote doubled (pg_ident.conf's quoting).
  printf 'init "%s" "%s"\n' "$(id -un | sed 's/"/""/g')" "${POSTGRES_USER//\"/\"\"}" >"$init_conf/ident.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/var/run/postgresql -c hba_file=$init_conf/hba.conf -c ident_file=$init_conf/ident.conf" -w start >/dev/null
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
      # An init script's psql connects as POSTGRES_USER over the socket, no password needed.
      *.sh)  echo "running $f"; PGHOST=/var/run/postgresql PGUSER="$POSTGRES_USER" PGDATABASE="$POSTGRES_DB" bash "$f" ;;
      *)     echo "ignoring $f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  rm -rf "$init_conf"; trap - EXIT
  echo "PostgreSQL init done"
fi

unset POSTGRES_PASSWORD
shift || true
exec postgres -D "$PGDATA" "$@"
