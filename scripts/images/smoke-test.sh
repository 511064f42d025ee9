#!/usr/bin/env bash
# Smoke test of the offline images: each one runs with a freshly generated password on a
# user-defined docker network, must become healthy, run as non-root, and do one real operation.
# Usage: scripts/images/smoke-test.sh [names...]   (default: every image in images/versions.json)
# Builds missing images first (scripts/images/build-images.sh). Cleans up its containers,
# volumes and network on exit. Ends with "N passed, N failed".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=../lib/local-images.sh
source "$ROOT/scripts/lib/local-images.sh"
RUN_ID="smoke$$"
NET="ai-trading-$RUN_ID"
TMP="$(mktemp -d)"; chmod 700 "$TMP"
pass=0; fail=0; failed=()

log() { echo "[smoke] $*" >&2; }

cleanup() {
  local ids
  ids="$(docker ps -aq --filter "label=ai-trading.smoke=$RUN_ID" 2>/dev/null || true)"
  [ -z "$ids" ] || xargs docker rm -f -v <<<"$ids" >/dev/null 2>&1 || true
  docker volume ls -q --filter "label=ai-trading.smoke=$RUN_ID" 2>/dev/null | xargs -r docker volume rm >/dev/null 2>&1 || true
  docker network rm "$NET" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

"$ROOT/scripts/docker/ensure-dockerd.sh"

image_of() { local_image "$1:$(local_image_tag "$ROOT" "$1")"; }
newpw() { openssl rand -base64 32 | tr -d '\n'; }

# run_bg <name> <image> [docker run args...] -- [command...]: detached container on the test network.
run_bg() {
  local name="$1" image="$2"; shift 2
  local opts=() 
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  [ $# -eq 0 ] || shift
  docker run -d --name "$name-$RUN_ID" --hostname "$name" --network "$NET" --network-alias "$name" \
    --label "ai-trading.smoke=$RUN_ID" "${opts[@]}" "$image" "$@" >/dev/null
}
# client <image> [docker run args...] -- command...: one-off container on the test network.
client() {
  local image="$1"; shift
  local opts=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  [ $# -eq 0 ] || shift
  docker run --rm -i --network "$NET" --label "ai-trading.smoke=$RUN_ID" "${opts[@]}" "$image" "$@"
}

wait_healthy() {  # <container> <timeout seconds>
  local c="$1-$RUN_ID" deadline=$((SECONDS + $2)) st
  while [ "$SECONDS" -lt "$deadline" ]; do
    st="$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c" 2>/dev/null || echo gone)"
    case "$st" in
      "running healthy") return 0 ;;
      running*) sleep 1 ;;
      *) log "$c is $st"; docker logs --tail 30 "$c" >&2 || true; return 1 ;;
    esac
  done
  log "$c not healthy after $2s"; docker logs --tail 30 "$c" >&2 || true
  docker inspect -f '{{json .State.Health}}' "$c" >&2 || true
  return 1
}

non_root() {  # <container>
  local uid; uid="$(docker exec "$1-$RUN_ID" id -u)"
  [ "$uid" != 0 ] || { log "$1 runs as root"; return 1; }
  log "$1 runs as uid $uid"
}

# secret_file <value> <name>: $TMP/<name> holding value, readable by the image's non-root user
# (a bind-mounted file keeps its mode; $TMP itself stays 0700).
secret_file() { printf '%s' "$1" >"$TMP/$2"; chmod 444 "$TMP/$2"; }

# refuses_without_password <image> <var>: the container must exit non-zero naming the variable.
refuses_without_password() {
  local out
  if out="$(docker run --rm --label "ai-trading.smoke=$RUN_ID" "$1" 2>&1)"; then
    log "$1 started without $2"; return 1
  fi
  echo "$out" | grep -qF -- "$2" || { log "unexpected refusal message: $out"; return 1; }
  log "refuses to start without $2: ok"
}

# ---------------------------------------------------------------------------------------------
t_postgres() {
  local img pw; img="$(image_of postgres)"; pw="$(newpw)"
  refuses_without_password "$img" POSTGRES_PASSWORD
  printf 'POSTGRES_USER=trading\nPOSTGRES_DB=trading\nPOSTGRES_PASSWORD=%s\n' "$pw" >"$TMP/pg.env"
  docker volume create --label "ai-trading.smoke=$RUN_ID" "pgdata-$RUN_ID" >/dev/null
  run_bg postgres "$img" --env-file "$TMP/pg.env" -v "pgdata-$RUN_ID:/var/lib/postgresql/data"
  wait_healthy postgres 90
  non_root postgres
  local out
  out="$(printf 'PGPASSWORD=%s\n' "$pw" >"$TMP/pgc.env"; client "$img" --env-file "$TMP/pgc.env" -- \
         psql -h postgres -U trading -d trading -tAc "SELECT 1; SHOW password_encryption;")"
  [ "$(echo "$out" | tr '\n' ' ')" = "1 scram-sha-256 " ] || { log "psql said: $out"; return 1; }
  log "psql SELECT 1 with the password over TCP: ok (password_encryption=scram-sha-256)"
  printf 'PGPASSWORD=wrong\n' >"$TMP/pgw.env"
  if client "$img" --env-file "$TMP/pgw.env" -- psql -h postgres -U trading -d trading -tAc "SELECT 1" >/dev/null 2>&1; then
    log "a wrong password was accepted"; return 1
  fi
  log "wrong password rejected: ok"
  # Data survives a restart; the cluster is not initialised twice.
  client "$img" --env-file "$TMP/pgc.env" -- psql -q -v ON_ERROR_STOP=1 -h postgres -U trading -d trading \
    -c "CREATE TABLE smoke (v text); INSERT INTO smoke VALUES ('kept');"
  docker restart "postgres-$RUN_ID" >/dev/null
  wait_healthy postgres 60
  out="$(client "$img" --env-file "$TMP/pgc.env" -- psql -h postgres -U trading -d trading -tAc "SELECT v FROM smoke")"
  [ "$out" = kept ] || { log "after restart: $out"; return 1; }
  [ "$(docker logs "postgres-$RUN_ID" 2>&1 | grep -c 'initialising PostgreSQL cluster')" = 1 ] || { log "initialised twice"; return 1; }
  log "data kept across a restart: ok"
  # An initdb that fails (a superuser name initdb refuses) leaves no file behind: the password went
  # to initdb through a temporary file in /tmp, left there when initdb failed (session 45).
  secret_file "$pw" pg.pw
  if docker run --name "pgfail-$RUN_ID" --label "ai-trading.smoke=$RUN_ID" -e POSTGRES_USER=pg_refused \
       -e POSTGRES_PASSWORD_FILE=/run/secrets/postgres_password -v "$TMP/pg.pw:/run/secrets/postgres_password:ro" "$img" >"$TMP/pgfail.log" 2>&1; then
    log "initdb with a refused user name succeeded"; return 1
  fi
  if docker diff "pgfail-$RUN_ID" | grep -E '^A /tmp/.'; then log "the failed init left the file(s) above in /tmp"; return 1; fi
  if grep -qF -- "$pw" "$TMP/pgfail.log"; then log "the failed init printed the password"; return 1; fi
  log "POSTGRES_PASSWORD_FILE, initdb failed: nothing left in /tmp, no password in the log: ok"
  pg_environ_clean "$img" "$pw"
}

# Session 52: no PostgreSQL server process holds the password in its environment (/proc/<pid>/environ):
# not the server (the entrypoint unsets it before exec), not the first start's temporary server and
# not the init scripts (PGPASSWORD was exported to both; they use peer authentication now). The
# password given as a variable (Kubernetes' secretKeyRef; the Docker runtime gives a file): the case
# where it is exported. An init script reads the environments while the temporary server runs.
pg_environ_clean() {
  local img="$1" pw="$2" out
  secret_file "$pw" pgcheck.pw
  cat >"$TMP/env-check.sh" <<'CHECK'
pw="$(cat /run/check/pw)"
pid="$(head -1 "$PGDATA/postmaster.pid")"
if tr '\0' '\n' <"/proc/$pid/environ" | grep -qF -- "$pw"; then echo "env-check: temporary server HOLDS the password"; else echo "env-check: temporary server clean"; fi
if tr '\0' '\n' <"/proc/$$/environ" | grep -qF -- "$pw"; then echo "env-check: init script HOLDS the password"; else echo "env-check: init script clean"; fi
echo "env-check: psql as $(psql -v ON_ERROR_STOP=1 -tAc 'SELECT current_user')"
CHECK
  chmod 444 "$TMP/env-check.sh"
  run_bg pgenv "$img" --env-file "$TMP/pg.env" -v "$TMP/pgcheck.pw:/run/check/pw:ro" -v "$TMP/env-check.sh:/docker-entrypoint-initdb.d/env-check.sh:ro"
  wait_healthy pgenv 90
  out="$(docker logs "pgenv-$RUN_ID" 2>&1)"
  for want in "env-check: temporary server clean" "env-check: init script clean" "env-check: psql as trading"; do
    echo "$out" | grep -qxF "$want" || { log "missing '$want' in: $(echo "$out" | grep env-check)"; return 1; }
  done
  if echo "$out" | grep -qF -- "$pw"; then log "the init printed the password"; return 1; fi
  out="$(docker exec "pgenv-$RUN_ID" sh -c 'tr "\0" "\n" </proc/$(head -1 "$PGDATA/postmaster.pid")/environ')"
  [ -n "$out" ] || { log "could not read the server's environment"; return 1; }
  if echo "$out" | grep -qF -- "$pw"; then log "the server's environment holds the password"; return 1; fi
  log "no password in the environment of the server, the temporary server or the init scripts (given as a variable): ok"
}

t_redis() {
  local img pw; img="$(image_of redis)"; pw="$(newpw)"
  refuses_without_password "$img" REDIS_PASSWORD
  printf 'REDIS_PASSWORD=%s\n' "$pw" >"$TMP/redis.env"
  run_bg redis "$img" --env-file "$TMP/redis.env"
  wait_healthy redis 60
  non_root redis
  docker top "redis-$RUN_ID" -eo pid,args >"$TMP/redis.ps"
  grep -q 'redis-server' "$TMP/redis.ps" || { log "no redis-server in ps: $(cat "$TMP/redis.ps")"; return 1; }
  if grep -qF -- "$pw" "$TMP/redis.ps"; then log "password visible in ps"; return 1; fi
  log "password not on any process command line: ok"
  local out
  out="$(client "$img" -- redis-cli -h redis PING 2>&1 || true)"
  echo "$out" | grep -q NOAUTH || { log "unauthenticated PING said: $out"; return 1; }
  out="$(printf 'AUTH %s\nSET smoke:key hello-%s\nGET smoke:key\nCONFIG GET appendonly\n' "$pw" "$RUN_ID" | client "$img" -- redis-cli -h redis)"
  [ "$(echo "$out" | tr '\n' ' ')" = "OK OK hello-$RUN_ID appendonly yes " ] || { log "redis said: $out"; return 1; }
  log "AUTH + SET/GET: ok, appendonly yes"
  # The password as a file, as the Docker runtime gives it: the image's own health check reads it too
  # (before session 45 it read REDIS_PASSWORD only, and such a container stayed unhealthy).
  secret_file "$pw" redis.pw
  run_bg redisfile "$img" -e REDIS_PASSWORD_FILE=/run/secrets/redis_password -v "$TMP/redis.pw:/run/secrets/redis_password:ro"
  wait_healthy redisfile 60
  out="$(printf 'AUTH %s\nPING\n' "$pw" | client "$img" -- redis-cli -h redisfile)"
  [ "$(echo "$out" | tr '\n' ' ')" = "OK PONG " ] || { log "redis (REDIS_PASSWORD_FILE) said: $out"; return 1; }
  if docker inspect -f '{{json .Config.Env}} {{json .Config.Healthcheck}}' "redisfile-$RUN_ID" | grep -qF -- "$pw"; then
    log "password in the container's variables or health check"; return 1
  fi
  log "REDIS_PASSWORD_FILE: healthy by the image's own check, AUTH with the file's password, none in docker inspect: ok"
}

t_kafka() {
  local img; img="$(image_of kafka)"
  run_bg kafka "$img" -e KAFKA_ADVERTISED_HOST=kafka
  wait_healthy kafka 120
  non_root kafka
  local msg="hello-$RUN_ID" out
  echo "$msg" | client "$img" -e KAFKA_HEAP_OPTS=-Xmx128m -- \
    kafka-console-producer.sh --bootstrap-server kafka:9092 --topic smoke --producer-property acks=all >/dev/null 2>"$TMP/producer.err" \
    || { cat "$TMP/producer.err" >&2; return 1; }
  out="$(client "$img" -e KAFKA_HEAP_OPTS=-Xmx128m -- \
    kafka-console-consumer.sh --bootstrap-server kafka:9092 --topic smoke --from-beginning \
      --max-messages 1 --timeout-ms 30000 2>"$TMP/consumer.err")" || { cat "$TMP/consumer.err" >&2; return 1; }
  [ "$out" = "$msg" ] || { log "consumed: '$out'"; return 1; }
  log "produced and consumed one message via kafka:9092: ok"
}

t_clickhouse() {
  local img pw; img="$(image_of clickhouse)"; pw="$(newpw)"
  refuses_without_password "$img" CLICKHOUSE_PASSWORD
  printf 'CLICKHOUSE_USER=trading\nCLICKHOUSE_DB=trading\nCLICKHOUSE_PASSWORD=%s\n' "$pw" >"$TMP/ch.env"
  run_bg clickhouse "$img" --env-file "$TMP/ch.env"
  wait_healthy clickhouse 90
  non_root clickhouse
  local out
  # credentials through curl's config on stdin
  out="$(printf 'user = "trading:%s"\n' "$pw" | client "$img" -- curl -fsS --config - \
    --data-binary "SELECT 1, (SELECT count() FROM system.databases WHERE name = 'trading')" http://clickhouse:8123/)"
  [ "$(echo "$out" | tr '\t' ' ')" = "1 1" ] || { log "clickhouse said: $out"; return 1; }
  log "HTTP SELECT 1 with the password: ok; database trading exists"
  if printf 'user = "trading:wrong"\n' | client "$img" -- curl -fsS --config - --data-binary "SELECT 1" http://clickhouse:8123/ >/dev/null 2>&1; then
    log "a wrong password was accepted"; return 1
  fi
  if client "$img" -- curl -fsS --data-binary "SELECT 1" http://clickhouse:8123/ >/dev/null 2>&1; then
    log "the password-less default user still works"; return 1
  fi
  log "wrong password and password-less default user rejected: ok"
  # The backup CronJob runs clickhouse-client in this image (components/data/backup.ts).
  client "$img" --entrypoint clickhouse-client -- --version >/dev/null || { log "no clickhouse-client in the image"; return 1; }
  log "clickhouse-client present: ok"
}

t_nginx() {
  local img; img="$(image_of nginx)"
  # As the Pulumi program does: create, upload /etc/nginx/nginx.conf, start.
  cat >"$TMP/nginx.conf" <<'CONF'
worker_processes 1;
events { worker_connections 64; }
http {
  access_log off;
  server {
    listen 8443 ssl;
    ssl_certificate     /etc/nginx/tls/tls.crt;
    ssl_certificate_key /etc/nginx/tls/tls.key;
    location = /healthz { return 200 "uploaded-config\n"; }
  }
  server { listen 8080; location = /healthz { return 200 "ok\n"; } }
}
CONF
  docker create --name "nginx-$RUN_ID" --hostname nginx --network "$NET" --network-alias nginx \
    --label "ai-trading.smoke=$RUN_ID" -e TLS_COMMON_NAME=gateway.local "$img" >/dev/null
  docker cp "$TMP/nginx.conf" "nginx-$RUN_ID:/etc/nginx/nginx.conf"
  docker start "nginx-$RUN_ID" >/dev/null
  wait_healthy nginx 60
  non_root nginx
  docker exec "nginx-$RUN_ID" cat /etc/nginx/tls/tls.crt >"$TMP/ca.crt"
  local out
  out="$(client "$img" -v "$TMP/ca.crt:/tmp/ca.crt:ro" -- \
    curl -fsS --cacert /tmp/ca.crt --connect-to gateway.local:8443:nginx:8443 https://gateway.local:8443/healthz)"
  [ "$out" = uploaded-config ] || { log "nginx said: $out"; return 1; }
  log "https with the generated self-signed certificate (CN=gateway.local, verified) and the uploaded config: ok"
}

t_prometheus() {
  local img; img="$(image_of prometheus)"
  mkdir -p "$TMP/rules"
  cat >"$TMP/prometheus.yml" <<'YML'
global: { scrape_interval: 5s, evaluation_interval: 5s }
rule_files: ["/etc/prometheus/rules/*.yml"]
scrape_configs:
  - job_name: self
    static_configs: [{ targets: ["127.0.0.1:9090"] }]
YML
  cat >"$TMP/rules/smoke.yml" <<'YML'
groups:
  - name: smoke-uploaded
    rules:
      - record: smoke:up:sum
        expr: sum(up)
YML
  docker create --name "prometheus-$RUN_ID" --hostname prometheus --network "$NET" --network-alias prometheus \
    --label "ai-trading.smoke=$RUN_ID" "$img" >/dev/null
  docker cp "$TMP/prometheus.yml" "prometheus-$RUN_ID:/etc/prometheus/prometheus.yml"
  docker cp "$TMP/rules/smoke.yml" "prometheus-$RUN_ID:/etc/prometheus/rules/smoke.yml"
  docker start "prometheus-$RUN_ID" >/dev/null
  wait_healthy prometheus 60
  non_root prometheus
  client "$img" -- curl -fsS http://prometheus:9090/-/healthy >/dev/null
  client "$img" -- curl -fsS http://prometheus:9090/api/v1/rules | grep -q smoke-uploaded \
    || { log "uploaded rule group not loaded"; return 1; }
  log "/-/healthy and the uploaded rule group loaded: ok"
}

t_node() {
  local img; img="$(image_of node)"
  local out
  out="$(docker run --rm --label "ai-trading.smoke=$RUN_ID" "$img" sh -c 'echo "$(id -u) $(node -v) $(npm -v)"')"
  case "$out" in "10001 v20."*) ;; *) log "node image said: $out"; return 1 ;; esac
  log "uid, node, npm: $out"
  docker image inspect "$(local_image node:20)" >/dev/null || { log "$(local_image node:20) tag missing"; return 1; }
  # The inherited health check probes GET /health on $PORT.
  run_bg nodeapp "$(local_image node:20)" -e PORT=3000 -- node -e \
    "require('http').createServer((q,r)=>{r.writeHead(q.url==='/health'?200:404);r.end('ok')}).listen(process.env.PORT)"
  wait_healthy nodeapp 60
  log "health check on /health: ok"
}

# ---------------------------------------------------------------------------------------------
names=("$@")
if [ "${#names[@]}" -eq 0 ]; then
  mapfile -t names < <(local_image_tags "$ROOT" | cut -d: -f1)
fi
missing=()
for n in "${names[@]}"; do docker image inspect "$(image_of "$n")" >/dev/null 2>&1 || missing+=("$n"); done
[ "${#missing[@]}" -eq 0 ] || "$ROOT/scripts/images/build-images.sh" "${missing[@]}"

docker network create --label "ai-trading.smoke=$RUN_ID" "$NET" >/dev/null
for n in "${names[@]}"; do
  start=$SECONDS
  log "== $n ($(image_of "$n"))"
  set +e; ( set -e; "t_$n" ); rc=$?; set -e
  if [ "$rc" -eq 0 ]; then
    pass=$((pass + 1)); log "PASS $n ($((SECONDS - start))s)"
  else
    fail=$((fail + 1)); failed+=("$n"); log "FAIL $n ($((SECONDS - start))s)"
  fi
  ids="$(docker ps -aq --filter "label=ai-trading.smoke=$RUN_ID")"
  [ -z "$ids" ] || xargs docker rm -f -v <<<"$ids" >/dev/null 2>&1 || true
done
[ "$fail" -eq 0 ] || log "failed: ${failed[*]}"
echo "smoke: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
