#!/bin/bash
# ClickHouse entrypoint: refuses to start without CLICKHOUSE_PASSWORD (or CLICKHOUSE_PASSWORD_FILE); writes the user with a
# sha256 password into users.d (mode 600); creates CLICKHOUSE_DB once; runs the server in the foreground.
set -euo pipefail

if [ "${1:-clickhouse-server}" != clickhouse-server ]; then exec "$@"; fi

# A secret may come as a file instead (NAME_FILE): file_env, the one source in images/lib/file-env.sh.
# shellcheck source=../lib/file-env.sh
source /usr/local/lib/ai-trading/file-env.sh
file_env CLICKHOUSE_PASSWORD
if [ -z "${CLICKHOUSE_PASSWORD:-}" ]; then
  echo "FATAL: CLICKHOUSE_PASSWORD is not set; this image has no default password" >&2
  exit 1
fi
CH_USER="${CLICKHOUSE_USER:-default}"
CH_DB="${CLICKHOUSE_DB:-}"
case "$CH_USER" in *[!A-Za-z0-9_]*|"") echo "FATAL: CLICKHOUSE_USER must match [A-Za-z0-9_]+" >&2; exit 1;; esac
case "$CH_DB" in *[!A-Za-z0-9_]*) echo "FATAL: CLICKHOUSE_DB must match [A-Za-z0-9_]+" >&2; exit 1;; esac

CONFIG=/etc/clickhouse-server/config.xml
USERS_FILE=/etc/clickhouse-server/users.d/ai-trading-user.xml
hash="$(printf '%s' "$CLICKHOUSE_PASSWORD" | sha256sum | cut -d' ' -f1)"
umask 077
cat >"$USERS_FILE.tmp" <<XML
<?xml version="1.0"?>
<yandex>
    <users>
        <$CH_USER>
            <password_sha256_hex>$hash</password_sha256_hex>
            <networks replace="replace"><ip>::/0</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </$CH_USER>
    </users>
</yandex>
XML
mv "$USERS_FILE.tmp" "$USERS_FILE"
umask 022

if [ -n "$CH_DB" ] && [ ! -e "/var/lib/clickhouse/metadata/$CH_DB.sql" ]; then
  echo "creating database $CH_DB"
  clickhouse-server --config-file="$CONFIG" >/var/log/clickhouse-server/init.log 2>&1 &
  pid=$!
  for _ in $(seq 1 60); do
    curl -fsS http://127.0.0.1:8123/ping >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { cat /var/log/clickhouse-server/init.log >&2; exit 1; }
    sleep 0.5
  done
  # Credentials via curl's config on stdin: never on a command line.
  printf 'user = "%s:%s"\n' "$CH_USER" "${CLICKHOUSE_PASSWORD//\"/\\\"}" \
    | curl -fsS --config - --data-binary "CREATE DATABASE IF NOT EXISTS $CH_DB" http://127.0.0.1:8123/ >/dev/null
  kill -TERM "$pid"; wait "$pid" || true
fi

unset CLICKHOUSE_PASSWORD
shift || true
exec clickhouse-server --config-file="$CONFIG" "$@"
