# shellcheck shell=bash
# Where this machine's own image builds live: a `localhost/...` repository, a registry host of this
# machine, so a missing build is never pulled from Docker Hub (a bare `ai-trading/<build>` is
# docker.io/ai-trading/<build>, whoever owns it). The programs' name for it is LOCAL_REPOSITORY in
# stacks/images.ts; tests/unit/local-image-names.test.ts keeps the two equal. The Dockerfiles' ARG
# defaults spell it too (a Dockerfile cannot source this), and the same test checks them.
#
#   source scripts/lib/local-images.sh
#   local_image NAME:TAG     prints $LOCAL_REPOSITORY/NAME:TAG
#   prune_superseded_images  removes this repo's builds a rebuild has untagged (see below)
#   make_readable PATH...    gives everyone read on build-context files a non-root image user reads
LOCAL_REPOSITORY=localhost/ai-trading
local_image() { echo "$LOCAL_REPOSITORY/$1"; }

# Every rebuild of a local image (the services and trainer images at each `pulumi up` whose inputs
# changed, an images/* build) moves its tag to the new image and leaves the old one untagged, about
# a gigabyte each (1.2 GB and 1.1 GB here), ten of them after one evening's e2e and CI runs.
# Removed here: untagged images that carry this repo's label (every build's base sets
# ai-trading.image), created more than an hour ago. Never a tagged image, another project's, one a
# container uses (Docker refuses), nor one a build running now may still need (the hour).
prune_superseded_images() {
  command -v docker >/dev/null 2>&1 || return 0
  docker image prune --force --filter "label=ai-trading.image" --filter "until=1h" 2>/dev/null | sed -n 's/^Total reclaimed space: /[images] superseded local builds removed: /p' >&2 || true
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
