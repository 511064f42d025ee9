#!/usr/bin/env bash
# End-to-end check of tools/providers on the local Docker engine: copies program/ to a temp dir
# (node_modules linked from the repo), own file backend there, then
#   both plugins' schemas bind in the CLI (`pulumi package get-schema`) -> up -> preview
#   --expect-no-changes -> password not in `stack export` -> edit the build context -> up (Image and
#   the job using it replaced) -> preview --expect-no-changes -> destroy -> no leftovers.
# Needs: .tools/bin/pulumi (scripts/tools/build-pulumi-tools.sh), the images localhost/ai-trading/redis:<its tag in
# images/versions.json, passed to the program as E2E_REDIS_IMAGE> and localhost/ai-trading/debian:bookworm
# (scripts/images/build-images.sh redis), root npm install.
#   bash tools/providers/e2e/run.sh        # about 30 s
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
bash "$ROOT/scripts/tools/build-local-providers.sh"
WORK=$(mktemp -d /tmp/providers-e2e.XXXXXX)
cp -r "$ROOT/tools/providers/e2e/program/." "$WORK/"
ln -s "$ROOT/node_modules" "$WORK/node_modules"
mkdir -p "$WORK/.state"
export PULUMI_BACKEND_URL=file://$WORK/.state PULUMI_CONFIG_PASSPHRASE=providers-e2e
# shellcheck source=../../../scripts/lib/local-images.sh
source "$ROOT/scripts/lib/local-images.sh"
# The local Redis build under this clone's tag (a content key of its inputs: scripts/images/image-tags.sh).
E2E_REDIS_IMAGE=$(local_image "redis:$(local_image_tag "$ROOT" redis)")
export E2E_REDIS_IMAGE
# shellcheck source=../../../scripts/lib/pulumi-env.sh
source "$ROOT/scripts/lib/pulumi-env.sh"
export PATH=$ROOT/.tools/bin:$PATH # our plugins win over anything else on PATH
cd "$WORK"
fail() { echo "FAIL: $*" >&2; exit 1; }
cleanup() { pulumi destroy --yes --skip-preview >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
for p in random docker; do
	pulumi package get-schema "$ROOT/.tools/bin/pulumi-resource-$p" >"schema-$p.json" 2>"schema-$p.err" ||
		{ cat "schema-$p.err"; fail "the schema of pulumi-resource-$p does not bind in the CLI"; }
done
pulumi stack init e2e >/dev/null
pulumi up --yes --skip-preview >up.log 2>&1 || { cat up.log; fail "up"; }
echo "up: $(grep -E '^Duration' up.log)"
pulumi preview --expect-no-changes >prev.log 2>&1 || { cat prev.log; fail "preview after up shows changes"; }
pw=$(pulumi stack output password --show-secrets)
[[ ${#pw} == 44 ]] || fail "password length ${#pw}"
n=$(pulumi stack export | grep -c -- "$pw" || true)
[[ $n == 0 ]] || fail "the generated password is in the stack export in plain text ($n times)"
[[ "$(docker inspect -f '{{.State.Health.Status}}' e2e-prov-redis)" == healthy ]] || fail "redis not healthy"
[[ "$(docker exec e2e-prov-redis cat /etc/e2e/note.txt)" == "uploaded before start" ]] || fail "upload"
[[ "$(docker exec -u 999:999 e2e-prov-redis cat /etc/e2e/owned.txt)" == "owned by 999" ]] || fail "an upload owned by 999 (0400) is not readable by uid 999"
[[ "$(docker exec e2e-prov-redis stat -c '%u:%g %a' /etc/e2e/owned.txt)" == "999:999 400" ]] || fail "owner and mode of the owned upload"
[[ "$(pulumi stack output jobExit)" == 0 ]] || fail "job exit code"
echo "hello from the build context v2" >ctx/msg.txt
pulumi up --yes --skip-preview >up2.log 2>&1 || { cat up2.log; fail "up after a context edit"; }
grep -q "Image built replaced" up2.log || fail "Image not rebuilt after a context edit"
pulumi stack output jobLogs | grep -q "context v2" || fail "job did not run the rebuilt image"
pulumi preview --expect-no-changes >prev2.log 2>&1 || { cat prev2.log; fail "preview after the second up shows changes"; }
pulumi destroy --yes --skip-preview >destroy.log 2>&1 || { cat destroy.log; fail "destroy"; }
left="$(docker ps -aq --filter name=e2e-prov) $(docker volume ls -q --filter name=e2e-prov) $(docker network ls -q --filter name=e2e-prov)"
[[ -z "${left// /}" ]] || fail "leftovers after destroy: $left"
echo "providers e2e: 1 passed, 0 failed"
