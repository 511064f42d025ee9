#!/bin/bash
# Kafka entrypoint: single-node KRaft (broker+controller) listening on 0.0.0.0:${KAFKA_PORT:-9092},
# advertised as ${KAFKA_ADVERTISED_HOST:-$(hostname)}; formats /var/lib/kafka/data on first start.
set -euo pipefail
if [ "${1:-kafka}" != kafka ]; then exec "$@"; fi
export KAFKA_LISTEN_HOST=0.0.0.0
export KAFKA_ADVERTISED_HOST="${KAFKA_ADVERTISED_HOST:-$(hostname)}"
PORT="${KAFKA_PORT:-9092}"
CPORT="${KAFKA_CONTROLLER_PORT:-9093}"
exec /opt/kafka/bin/kafka-single-node.sh "$PORT" /var/lib/kafka/data "$CPORT" "$KAFKA_ADVERTISED_HOST"
