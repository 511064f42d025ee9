# shellcheck shell=bash
# Where this machine's own image builds live: a `localhost/...` repository, a registry host of this
# machine, so a missing build is never pulled from Docker Hub (a bare `ai-trading/<build>` is
# docker.io/ai-trading/<build>, whoever owns it). The programs' name for it is LOCAL_REPOSITORY in
# stacks/images.ts; tests/unit/local-image-names.test.ts keeps the two equal. The Dockerfiles' ARG
# defaults spell it too (a Dockerfile cannot source this), and the same test checks them.
#
#   source scripts/lib/local-images.sh
#   local_image NAME:TAG     prints $LOCAL_REPOSITORY/NAME:TAG
#   prune_superseded_images  removes this repo's builds a rebuild has untagged, and the local
#                            datastore builds' tags no clone here names any more (see below)
#   register_image_clone ROOT  records a clone whose images/versions.json names current tags
#   local_image_tags ROOT    NAME:TAG of each entry of ROOT/images/versions.json
#   local_image_tag ROOT NAME  the TAG of NAME's entry
#   make_readable PATH...    gives everyone read on build-context files a non-root image user reads
LOCAL_REPOSITORY=localhost/ai-trading
local_image() { echo "$LOCAL_REPOSITORY/$1"; }

# Every rebuild of a local image (the services and trainer images at each `pulumi up` whose inputs
# changed, an images/* build whose base image changed) moves its tag to the new image and leaves the
# old one untagged, about a gigabyte each (1.2 GB and 1.1 GB here), ten of them after one evening's
# e2e and CI runs. Removed here: untagged images that carry this repo's label (every build's base sets
# ai-trading.image), created more than an hour ago. Never a tagged image, another project's, one a
# container uses (Docker refuses), nor one a build running now may still need (the hour).
#
# The datastore builds of images/<name>/ are tagged <version>-local-<content key>
# (scripts/images/image-tags.sh), so an edited image is built under a new tag and the old one stays
# tagged: prune_superseded_tags removes a tag of those builds (and the unkeyed <version>-local of
# before) that neither this clone's images/versions.json nor that of any clone registered by its
# build (register_image_clone, in the cache folder) names, created more than an hour ago, with
# `docker image rm` (no force: Docker refuses an image a container, even a stopped one, uses).
# A clone whose builds use another TRADING_CACHE_DIR is not known here: its images go when no
# container uses them, and its next build makes them again.
prune_superseded_images() {
  command -v docker >/dev/null 2>&1 || return 0
  docker image prune --force --filter "label=ai-trading.image" --filter "until=1h" 2>/dev/null | sed -n 's/^Total reclaimed space: /[images] superseded local builds removed: /p' >&2 || true
  prune_superseded_tags || true
}

_LOCAL_IMAGES_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# The folder of the clone records: one file per clone that ran build-images.sh, holding its root.
_image_clones_dir() {
  local c="${TRADING_CACHE_DIR:-}"
  if [ -z "$c" ]; then [ -n "${HOME:-}" ] || return 1; c=$HOME/.cache/ai-trading; fi
  echo "$c/images/clones"
}
register_image_clone() {
  local d
  d=$(_image_clones_dir) || return 0
  mkdir -p "$d" && printf '%s\n' "$1" >"$d/$(printf '%s' "$1" | sha256sum | cut -c1-12)"
}
# local_image_tags ROOT: NAME:TAG of each entry of ROOT/images/versions.json (the datastore builds a clone runs).
local_image_tags() { sed -n 's/^ *"\([a-z0-9-]*\)": *"\([^"]*\)".*/\1:\2/p' "$1/images/versions.json" 2>/dev/null; }
# local_image_tag ROOT NAME: the tag ROOT/images/versions.json gives image NAME (empty when none).
local_image_tag() { local_image_tags "$1" | sed -n "s/^$2://p"; }
# NAME:TAG of the datastore builds this clone and every registered clone names (the record of a
# clone that is gone, no images/versions.json at its root, is removed).
current_local_image_refs() {
  local d f root
  local_image_tags "$_LOCAL_IMAGES_ROOT"
  d=$(_image_clones_dir) || return 0
  for f in "$d"/*; do
    [ -f "$f" ] || continue
    root=$(head -n1 "$f")
    if [ -f "$root/images/versions.json" ]; then local_image_tags "$root"; else rm -f "$f"; fi
  done
}
prune_superseded_tags() {
  local keep ref name tag created cutoff removed=()
  # Without this clone's own tags nothing is known to be current: nothing goes.
  [ -f "$_LOCAL_IMAGES_ROOT/images/versions.json" ] || return 0
  keep=$(current_local_image_refs | sort -u)
  cutoff=$(($(date +%s) - 3600))
  while IFS= read -r ref; do
    name=${ref#"$LOCAL_REPOSITORY/"}
    [ "$name" != "$ref" ] || continue # another repository
    tag=${name#*:} name=${name%%:*}
    [ -f "$_LOCAL_IMAGES_ROOT/images/$name/Dockerfile" ] || continue # services, trainer, debian: not these builds
    [[ "$tag" =~ ^[0-9][0-9A-Za-z._]*-local(-[0-9a-f]{12})?$ ]] || continue # node:20 and any other tag stay
    ! grep -qxF "$name:$tag" <<<"$keep" || continue
    created=$(docker image inspect -f '{{.Created}}' "$ref" 2>/dev/null) || continue
    created=$(date -d "$created" +%s 2>/dev/null) || continue
    [ "$created" -lt "$cutoff" ] || continue
    docker image rm "$ref" >/dev/null 2>&1 && removed+=("$name:$tag")
  done < <(docker image ls --filter "label=ai-trading.image" --format '{{.Repository}}:{{.Tag}}' 2>/dev/null)
  [ "${#removed[@]}" -eq 0 ] || echo "[images] superseded local image tags removed (no clone here names them; no container uses them): ${removed[*]}" >&2
}

# A clone (or cache) made under umask 077 has files only their owner reads, and `COPY` keeps the
# modes: an image whose process runs as a non-root user (ClickHouse, Kafka, Nginx, PostgreSQL,
# Prometheus, the services' uid 10001, the trainer) could not read its configuration, its jars, its
# package.json or its migrations. make_readable PATH... gives everyone read (and search on folders)
# on what goes into the images, saying so; the sources are the repository's own, nothing secret.
make_readable() {
  local n
  n=$(find "$@" ! -perm -o+r 2>/dev/null | wc -l)
  [ "$n" -gt 0 ] || return 0
  echo "[images] $n file(s) or folder(s) in $* only their owner could read (a clone or cache made under umask 077?):" \
    "made readable (chmod -R a+rX), as the images' non-root users read them" >&2
  chmod -R a+rX "$@"
}
