# shellcheck shell=bash
# file_env NAME: a secret may come as a file instead (NAME_FILE, its path: the Docker runtime's
# /run/secrets), so it is no container variable (`docker inspect` shows those). Reads the file into
# the shell variable NAME, not exported (a caller that must hand it to one process exports it
# there), and unsets NAME_FILE. Stops the entrypoint naming the variables, never the content, when
# both are set or the file is missing, unreadable or empty.
# The one source for the local images' entrypoints: scripts/images/build-images.sh stages it into
# the build context of each image whose Dockerfile says `# image-lib: file-env.sh`, and its content
# is part of those images' build key.
file_env() {
  local var="$1" file_var="${1}_FILE"
  [ -n "${!file_var:-}" ] || return 0
  if [ -n "${!var:-}" ]; then echo "FATAL: $var and $file_var are both set: set only one" >&2; exit 1; fi
  if [ ! -r "${!file_var}" ] || [ ! -s "${!file_var}" ]; then echo "FATAL: $file_var names ${!file_var}, which is missing, unreadable or empty" >&2; exit 1; fi
  printf -v "$var" '%s' "$(<"${!file_var}")"
  unset "$file_var"
}
