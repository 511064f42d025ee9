#!/bin/bash
# Health check without a JVM: send a Kafka ApiVersions v0 request over TCP and expect a reply
# with our correlation id (42) and error code 0.
set -euo pipefail
PORT="${KAFKA_PORT:-9092}"
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
# size=14 | api_key=18 (ApiVersions) | api_version=0 | correlation_id=42 | client_id="hc" (len 2)... padded to "hlth"
printf '\x00\x00\x00\x0e\x00\x12\x00\x00\x00\x00\x00\x2a\x00\x04hlth' >&3
reply="$(timeout 4 head -c 10 <&3 | od -An -v -tx1 | tr -d ' \n')"
exec 3<&- 3>&-
# bytes: size(4) correlation_id(4)=0000002a error_code(2)=0000
[ "${reply:8:12}" = "0000002a0000" ]
