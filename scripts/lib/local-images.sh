# shellcheck shell=bash
# Where this machine's own image builds live: a `localhost/...` repository, a registry host of this
# machine, so a missing build is never pulled from Docker Hub (a bare `ai-trading/<build>` is
# docker.io/ai-trading/<build>, whoever owns it). The programs' name for it is LOCAL_REPOSITORY in
# stacks/images.ts; tests/unit/local-image-names.test.ts keeps the two equal. The Dockerfiles' ARG
# defaults spell it too (a Dockerfile cannot source this), and the same test checks them.
#
#   source scripts/lib/local-images.sh
#   local_image NAME:TAG     prints $LOCAL_REPOSITORY/NAME:TAG
LOCAL_REPOSITORY=localhost/ai-trading
local_image() { echo "$LOCAL_REPOSITORY/$1"; }
