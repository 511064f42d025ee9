#!/bin/bash
# Redis entrypoint: refuses to start without REDIS_PASSWORD (or REDIS_PASSWORD_FILE); writes it into a mode-600 config
# file (so it is not visible in `ps`), append-only persistence in /data.
# Extra redis.conf lines can be passed in REDIS_EXTRA_CONFIG (newline-separated).
set -euo pipefail

if [ "${1:-redis-server}" != redis-server ]; then exec "$@"; fi

# A secret may come as a file instead (NAME_FILE): file_env, the one source in images/lib/file-env.sh.
# shellcheck source=../lib/file-env.sh
source /usr/local/lib/ai-trading/file-env.sh
file_env REDIS_PASSWORD
if [ -z "${REDIS_PASSWORD:-}" ]; then
  echo "FATAL: REDIS_PASSWORD is not set; this image has no default password" >&2
  exit 1
fi
case "$REDIS_PASSWORD" in *$'\n'*|*$'\r'*) echo "FATAL: REDIS_PASSWORD must not contain newlines" >&2; exit 1;; esac

CONF=/run/redis-conf/redis.conf
esc="${REDIS_PASSWORD//\\/\\\\}"; esc="${esc//\"/\\\"}"
umask 077
cat >"$CONF" <<CONF
bind * -::*
port ${REDIS_PORT:-6379}
protected-mode no
daemonize no
logfile ""
dir /data
appendonly yes
appendfsync everysec
save ""
requirepass "$esc"
${REDIS_EXTRA_CONFIG:-}
CONF
unset REDIS_PASSWORD esc
shift || true
exec redis-server "$CONF" "$@"
