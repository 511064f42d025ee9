#!/usr/bin/env bash
# The tags of the local images (images/<name>/Dockerfile), computed here and only here:
#   <pinned upstream version>-local-<content key>, e.g. localhost/ai-trading/postgres:15.20-local-3f9a1c2b7d4e
# The content key is 12 hex digits of a sha256 over the image's build inputs that live in the
# repository: every file of images/<name>/ but the staged .stage/ (path, content, executable bit),
# and the content of each shared images/lib/<file> its Dockerfile declares (`# image-lib: <file>`).
# The Dockerfile holds the version pins (ARG *_VERSION defaults: the Debian packages, and Kafka, Node,
# npm and Weaviate, whose artefacts the build stages), so a changed pin is a changed key.
#
# Before, a tag was the upstream version alone (postgres:15.20-local): two clones on one Docker
# engine whose images/postgres/ differed (a developer's two checkouts, CI beside a dev deploy) built
# under one name, each build replaced the other's image, a deployment of one clone could run the
# other's entrypoint, and each `pulumi up` rebuilt and replaced. Now clones whose inputs differ get
# different tags, and clones whose inputs are equal share one image.
#
# build-images.sh writes the tags to images/versions.json ({name: tag}), which the programs read
# (stacks/images.ts), as do platform-images.sh and smoke-test.sh. The file is committed, so that a
# fresh clone's program and tests have it: tests/unit/image-tags.test.ts runs `--check` and fails
# when it is stale (an image input edited without running build-images.sh or this script).
# What the key leaves out, as the program cannot know it without Docker: the base image's id, the
# staged artefacts themselves (named by the pins) and UNPIN; those are in the build's ai-trading.hash
# label, so a build whose inputs beyond the key changed is rebuilt under the same tag.
#
#   source scripts/images/image-tags.sh      # IMAGES_DIR defaults to this clone's images/
#   image_tag NAME | image_key NAME | image_version NAME | image_libs NAME | versions_json
#   bash scripts/images/image-tags.sh            # prints versions_json
#   bash scripts/images/image-tags.sh --write    # writes images/versions.json
#   bash scripts/images/image-tags.sh --check    # exit 1 naming what differs when images/versions.json is stale

IMAGES_DIR="${IMAGES_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../images" && pwd)}"

# Default value of ARG $2 in Dockerfile $1 (first occurrence).
arg_default() { sed -n "s/^ARG $2=\(.*\)\$/\1/p" "$1" | head -n1; }

# image_libs NAME: the shared files of images/lib/ that image NAME's Dockerfile declares, one
# `# image-lib: <file>` line each (file-env.sh: the entrypoints' reading of NAME_FILE). Each build
# context is its own folder, so build-images.sh copies them into .stage/lib/, and the key takes
# their content: a change to a shared file changes the key of every image that declares it, and only those.
image_libs() { sed -n 's/^# image-lib: *\([A-Za-z0-9._-]*\) *$/\1/p' "$IMAGES_DIR/$1/Dockerfile"; }

# image_version NAME: its pinned upstream version (`# image-version: <ARG>` names the ARG; epoch,
# Debian revision and +ds stripped).
image_version() {
  local df="$IMAGES_DIR/$1/Dockerfile" arg ver
  arg="$(sed -n 's/^# image-version: *\([A-Z_0-9]*\).*/\1/p' "$df" | head -n1)"
  [ -n "$arg" ] || { echo "no '# image-version: ARG' line in $df" >&2; return 1; }
  ver="$(arg_default "$df" "$arg")"
  [ -n "$ver" ] || { echo "ARG $arg has no default in $df" >&2; return 1; }
  echo "$ver" | sed -e 's/^[0-9]*://' -e 's/-.*//' -e 's/+.*//'
}

# image_key NAME: the content key (above). Paths are relative to images/<name>/, so where the clone
# lies does not matter; a declared shared file that is missing keys as "missing" (the build stops on it).
image_key() {
  local dir="$IMAGES_DIR/$1" f
  [ -f "$dir/Dockerfile" ] || { echo "no such image: $1 ($dir/Dockerfile)" >&2; return 1; }
  {
    echo "image-key 1"
    for f in $(image_libs "$1"); do
      if [ -f "$IMAGES_DIR/lib/$f" ]; then
        printf 'lib/%s %s\n' "$f" "$(sha256sum <"$IMAGES_DIR/lib/$f" | cut -d' ' -f1)"
      else
        printf 'lib/%s missing\n' "$f"
      fi
    done
    (cd "$dir" && find . -path ./.stage -prune -o -type f -print | LC_ALL=C sort | while IFS= read -r f; do
       printf '%s %s %s\n' "$f" "$(if [ -x "$f" ]; then echo x; else echo -; fi)" "$(sha256sum <"$f" | cut -d' ' -f1)"; done)
  } | sha256sum | cut -c1-12
}

image_tag() {
  local ver key
  ver="$(image_version "$1")" || return 1
  key="$(image_key "$1")" || return 1
  echo "$ver-local-$key"
}

image_names() { local d; for d in "$IMAGES_DIR"/*/Dockerfile; do basename "$(dirname "$d")"; done; }

versions_json() {
  local first=1 n tag
  echo "{"
  for n in $(image_names); do
    tag="$(image_tag "$n")" || return 1
    [ $first -eq 1 ] || echo ","
    first=0
    printf '  "%s": "%s"' "$n" "$tag"
  done
  echo
  echo "}"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  out="$IMAGES_DIR/versions.json"
  case "${1:-}" in
    "") versions_json ;;
    --write) versions_json >"$out.tmp" && mv "$out.tmp" "$out" ;;
    --check)
      want="$(versions_json)"
      if [ "$want" != "$(cat "$out" 2>/dev/null)" ]; then
        echo "images/versions.json is stale: the local images' inputs changed since it was written. Expected:" >&2
        echo "$want" >&2
        echo "run: bash scripts/images/image-tags.sh --write (or scripts/images/build-images.sh) and commit images/versions.json" >&2
        exit 1
      fi
      ;;
    *) echo "usage: image-tags.sh [--write | --check]" >&2; exit 2 ;;
  esac
fi
