#!/bin/bash
# Prometheus entrypoint: validates /etc/prometheus/prometheus.yml (and its rules) with promtool,
# then runs prometheus in the foreground. Container args are appended as extra flags.
set -euo pipefail
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then exec "$@"; fi
CONF=/etc/prometheus/prometheus.yml
[ -r "$CONF" ] || { echo "FATAL: $CONF missing or unreadable" >&2; exit 1; }
promtool check config "$CONF" >/dev/null || { promtool check config "$CONF" >&2; exit 1; }
exec prometheus \
  --config.file="$CONF" \
  --storage.tsdb.path=/prometheus \
  --storage.tsdb.retention.time="${PROMETHEUS_RETENTION:-15d}" \
  --web.listen-address=0.0.0.0:9090 \
  --web.console.libraries=/usr/share/prometheus/console_libraries \
  --web.console.templates=/usr/share/prometheus/consoles \
  "$@"
