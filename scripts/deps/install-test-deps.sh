#!/usr/bin/env bash
# Install whatever the real-server test suite (tests/harness/) needs and is missing. Idempotent:
# a second run checks, installs nothing and only prints the Kafka directory.
#   - PostgreSQL 15 server binaries (/usr/lib/postgresql/15/bin)   apt: postgresql-15
#   - redis-server                                                  apt: redis-server
#   - clickhouse-server + clickhouse-client (Debian 12: 18.16)      apt: clickhouse-server clickhouse-client
#   - Java 17 for Kafka                                             apt: openjdk-17-jre-headless
#   - Apache Kafka (KRaft) jars + launcher                          scripts/kafka/fetch-kafka.sh
#   - nginx and promtool, to check generated configuration          apt: nginx-light prometheus
#   - python3 with venv (backtrader oracle venv from PyPI)           apt: python3 python3-venv
#   - shellcheck, to lint every shell script (tests/unit/shellcheck)  apt: shellcheck
# Packages may auto-start system services (postgresql, redis-server, clickhouse-server); the
# harness never uses them (it starts private servers on free loopback ports), so they are left
# alone unless TEST_DEPS_STOP_SYSTEM_SERVICES=1.
# Prints the Kafka distribution directory on the last line (the harness finds it by itself too).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=../lib/locks.sh
source "$ROOT/scripts/lib/locks.sh"
log() { echo "[install-test-deps] $*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
[ -x /usr/lib/postgresql/15/bin/postgres ] && [ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v clickhouse-server >/dev/null 2>&1 || missing+=(clickhouse-server)
command -v clickhouse-client >/dev/null 2>&1 || missing+=(clickhouse-client)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
# The generated Nginx and Prometheus configuration is checked with the real tools (nginx -t, promtool).
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# The backtrader oracle (tests/backtest/oracle.test.ts) builds a venv from PyPI.
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || missing+=(python3-venv)
# Every shell script of the repo passes shellcheck (tests/unit/shellcheck.test.ts).
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)

if [ "${#missing[@]}" -gt 0 ]; then
  log "installing with apt: ${missing[*]}"
  # policy-rc.d is not touched: services that auto-start use their default ports, ours are free ones.
  # apt_get waits for a concurrent install (another `npm test` or `npm run up`) instead of failing.
  apt_get update -qq
  apt_get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
else
  log "postgresql-15, redis-server, clickhouse-server/client, java, nginx, promtool, python3 and shellcheck already present"
fi

if [ "${TEST_DEPS_STOP_SYSTEM_SERVICES:-0}" = 1 ]; then
  for svc in postgresql redis-server clickhouse-server; do
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
      log "stopping system service $svc"; $SUDO systemctl stop "$svc" || true
    elif command -v service >/dev/null 2>&1; then
      $SUDO service "$svc" stop >/dev/null 2>&1 || true
    fi
  done
fi

# The harness runs postgres as an unprivileged user when started as root.
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  log "creating system user postgres"
  useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
fi

KAFKA_SCRIPT="$ROOT/scripts/kafka/fetch-kafka.sh"
if [ ! -f "$KAFKA_SCRIPT" ]; then
  log "missing $KAFKA_SCRIPT"; exit 1
fi
bash "$KAFKA_SCRIPT" | tail -n1
