#!/usr/bin/env bash
# Prepare a runnable Apache Kafka (KRaft) distribution from Maven Central jars, outside the clone:
#   ${TRADING_CACHE_DIR:-$HOME/.cache/ai-trading}/kafka/<version>/
#     jars/                     all runtime jars (kafka_2.13 + tools + log binding)
#     bin/kafka-run-class.sh    java -cp 'jars/*' <main class> [args]
#     bin/kafka-server.sh       <server.properties>     -> kafka.Kafka
#     bin/kafka-storage.sh      format -t <uuid> -c <server.properties> | random-uuid  -> kafka.tools.StorageTool
#     bin/kafka-single-node.sh  <port> <data-dir> [controller-port] [advertised-host]
#                               writes a combined broker+controller config, formats once, runs in the foreground
#     bin/kafka-console-producer.sh, bin/kafka-console-consumer.sh, bin/kafka-topics.sh
#     config/log4j.properties
# Prints that directory on stdout (last line). Idempotent: a second run only prints.
# Needs java (17) and mvn; installs them with apt if missing.
# Env: KAFKA_VERSION (default 3.9.1), TRADING_CACHE_DIR, MAVEN_REPO_LOCAL.
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-3.9.1}"
SCALA_VERSION=2.13
# shellcheck source=../lib/cache-dir.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cache-dir.sh" || exit 1 # TRADING_CACHE_DIR, or stops naming what to set
CACHE_ROOT="$TRADING_CACHE_DIR"
DEST="$CACHE_ROOT/kafka/$KAFKA_VERSION"
M2="${MAVEN_REPO_LOCAL:-$CACHE_ROOT/m2}"

log() { echo "[fetch-kafka] $*" >&2; }
# shellcheck source=../lib/locks.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/locks.sh"

if [ -f "$DEST/.complete" ]; then
  echo "$DEST"
  exit 0
fi

# Concurrent first runs (test workers, image builds) wait for each other.
mkdir -p "$CACHE_ROOT/kafka"
exec 9>"$CACHE_ROOT/kafka/.lock-$KAFKA_VERSION"
wait_for_lock 9 "$CACHE_ROOT/kafka/.lock-$KAFKA_VERSION" "another download of Kafka $KAFKA_VERSION"
if [ -f "$DEST/.complete" ]; then
  echo "$DEST"
  exit 0
fi

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
if [ "${#need_apt[@]}" -gt 0 ]; then
  log "installing ${need_apt[*]} (apt)"
  apt_get update -qq
  apt_get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cat >"$WORK/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.ai-trading</groupId>
  <artifactId>kafka-dist</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_$SCALA_VERSION</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-storage</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-raft</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-metadata</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
    <dependency><groupId>ch.qos.reload4j</groupId><artifactId>reload4j</artifactId><version>1.2.25</version></dependency>
  </dependencies>
</project>
POM

log "resolving Kafka $KAFKA_VERSION jars with Maven (local repo $M2)"
rm -rf "$DEST.tmp"; mkdir -p "$DEST.tmp/jars" "$DEST.tmp/bin" "$DEST.tmp/config"
# Maven remembers a failed download: a *.lastUpdated file beside the missing artifact, and it does
# not ask again until the repository's update interval (a day) has passed ("was cached in the local
# repository, resolution will not be reattempted until ..."). A first fetch cut by a network blip
# then failed every rerun for a day. Held under the Kafka lock, the markers of the local repository
# are removed and -U forces the retry; the artifacts Maven has are not fetched again.
if [ -d "$M2" ]; then
  stale=$(find "$M2" -name '*.lastUpdated' -type f -print -delete 2>/dev/null | wc -l)
  [ "$stale" = 0 ] || log "removed $stale marker(s) of earlier failed downloads from $M2: Maven asks Maven Central again"
fi
(cd "$WORK" && mvn -B -q -U -Dmaven.repo.local="$M2" \
   org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
   -DincludeScope=runtime -DoutputDirectory="$DEST.tmp/jars") >"$WORK/mvn.log" 2>&1 \
  || {
    tail -n 40 "$WORK/mvn.log" >&2
    log "ERROR: Maven could not fetch Kafka $KAFKA_VERSION's jars from Maven Central (its last lines above):" \
      "check this machine's network or proxy (Maven's settings.xml, MAVEN_OPTS), then run again: the next run asks again"
    exit 1
  }
# Two logging bindings on one class path make slf4j pick one at random: keep reload4j only.
rm -f "$DEST.tmp/jars"/slf4j-log4j12-*.jar "$DEST.tmp/jars"/logback-*.jar

cat >"$DEST.tmp/config/log4j.properties" <<'L4J'
log4j.rootLogger=${kafka.root.level}, stdout
kafka.root.level=WARN
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=WARN
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
log4j.logger.kafka.server.ControllerServer=INFO
log4j.logger.kafka.log=WARN
log4j.logger.kafka.coordinator=WARN
log4j.logger.state.change.logger=WARN
L4J

cat >"$DEST.tmp/bin/kafka-run-class.sh" <<'RUN'
#!/usr/bin/env bash
# Usage: kafka-run-class.sh <main class> [args...]
# Env: JAVA (default java), KAFKA_HEAP_OPTS (default -Xms128m -Xmx512m), KAFKA_OPTS, KAFKA_LOG4J_CONFIG
set -euo pipefail
KAFKA_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "${JAVA:-java}" ${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m} -XX:+UseG1GC -Djava.awt.headless=true \
  -Dlog4j.configuration="file:${KAFKA_LOG4J_CONFIG:-$KAFKA_HOME/config/log4j.properties}" \
  ${KAFKA_OPTS:-} -cp "$KAFKA_HOME/jars/*" "$@"
RUN
cat >"$DEST.tmp/bin/kafka-server.sh" <<'RUN'
#!/usr/bin/env bash
# Usage: kafka-server.sh <server.properties> [--override k=v ...]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 <server.properties>" >&2; exit 2; }
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" kafka.Kafka "$@"
RUN
cat >"$DEST.tmp/bin/kafka-storage.sh" <<'RUN'
#!/usr/bin/env bash
# Usage: kafka-storage.sh random-uuid | format -t <cluster-id> -c <server.properties> [--ignore-formatted]
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
RUN
cat >"$DEST.tmp/bin/kafka-topics.sh" <<'RUN'
#!/usr/bin/env bash
set -euo pipefail
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx256m}" exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.TopicCommand "$@"
RUN
cat >"$DEST.tmp/bin/kafka-console-producer.sh" <<'RUN'
#!/usr/bin/env bash
set -euo pipefail
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx256m}" exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" @PRODUCER@ "$@"
RUN
cat >"$DEST.tmp/bin/kafka-console-consumer.sh" <<'RUN'
#!/usr/bin/env bash
set -euo pipefail
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx256m}" exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" @CONSUMER@ "$@"
RUN
cat >"$DEST.tmp/bin/kafka-single-node.sh" <<'RUN'
#!/usr/bin/env bash
# Single-node KRaft Kafka (combined broker + controller), no ZooKeeper, in the foreground.
# Usage: kafka-single-node.sh <port> <data-dir> [controller-port] [advertised-host]
#   port             PLAINTEXT listener (clients), bound on KAFKA_LISTEN_HOST (default 127.0.0.1)
#   data-dir         log dir; formatted on first start (cluster id kept in data-dir/meta.properties)
#   controller-port  default port+1
#   advertised-host  default KAFKA_ADVERTISED_HOST or 127.0.0.1
# Env: KAFKA_LISTEN_HOST, KAFKA_ADVERTISED_HOST, KAFKA_CLUSTER_ID, KAFKA_NODE_ID (default 1),
#      KAFKA_HEAP_OPTS, KAFKA_EXTRA_CONFIG (extra lines appended to the generated config).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 <port> <data-dir> [controller-port] [advertised-host]" >&2; exit 2; }
BIN="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORT="$1"; DATA="$2"; CPORT="${3:-$((PORT + 1))}"
LISTEN="${KAFKA_LISTEN_HOST:-127.0.0.1}"
ADV="${4:-${KAFKA_ADVERTISED_HOST:-127.0.0.1}}"
NODE_ID="${KAFKA_NODE_ID:-1}"
CTRL_HOST="$LISTEN"; [ "$CTRL_HOST" = 0.0.0.0 ] && CTRL_HOST=127.0.0.1
mkdir -p "$DATA/logs"
CONF="$DATA/server.properties"
cat >"$CONF" <<CFG
process.roles=broker,controller
node.id=$NODE_ID
controller.quorum.voters=$NODE_ID@$CTRL_HOST:$CPORT
listeners=PLAINTEXT://$LISTEN:$PORT,CONTROLLER://$CTRL_HOST:$CPORT
advertised.listeners=PLAINTEXT://$ADV:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA/logs
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
min.insync.replicas=1
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0
log.retention.hours=24
log.segment.bytes=16777216
${KAFKA_EXTRA_CONFIG:-}
CFG
if [ ! -f "$DATA/logs/meta.properties" ]; then
  CID="${KAFKA_CLUSTER_ID:-$("$BIN/kafka-storage.sh" random-uuid | tail -n1)}"
  "$BIN/kafka-storage.sh" format -t "$CID" -c "$CONF" --ignore-formatted >"$DATA/format.log" 2>&1 \
    || { cat "$DATA/format.log" >&2; exit 1; }
fi
exec "$BIN/kafka-server.sh" "$CONF"
RUN

# Console tools moved between modules across versions: pick the class that exists.
has_class() {  # $1 = class name
  local path="${1//.//}.class" j
  for j in "$DEST.tmp"/jars/kafka*.jar; do
    if unzip -l "$j" 2>/dev/null | grep -q " $path\$"; then return 0; fi
  done
  return 1
}
command -v unzip >/dev/null 2>&1 || apt_get install -y -qq unzip
PRODUCER=kafka.tools.ConsoleProducer; has_class org.apache.kafka.tools.ConsoleProducer && PRODUCER=org.apache.kafka.tools.ConsoleProducer
CONSUMER=kafka.tools.ConsoleConsumer; has_class org.apache.kafka.tools.consumer.ConsoleConsumer && CONSUMER=org.apache.kafka.tools.consumer.ConsoleConsumer
sed -i "s/@PRODUCER@/$PRODUCER/" "$DEST.tmp/bin/kafka-console-producer.sh"
sed -i "s/@CONSUMER@/$CONSUMER/" "$DEST.tmp/bin/kafka-console-consumer.sh"
chmod 755 "$DEST.tmp"/bin/*.sh
echo "$KAFKA_VERSION" >"$DEST.tmp/VERSION"
touch "$DEST.tmp/.complete"
rm -rf "$DEST"; mv "$DEST.tmp" "$DEST"
jars=("$DEST"/jars/*)
log "Kafka $KAFKA_VERSION ready: ${#jars[@]} jars, $(du -sh "$DEST/jars" | cut -f1)"
echo "$DEST"
