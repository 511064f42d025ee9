# shellcheck shell=bash
# The cache of the set-up scripts, outside the clone: ${TRADING_CACHE_DIR:-$HOME/.cache/ai-trading}
# (the toolchain, images, Weaviate and Kafka builds, the locks, and the stacks' passphrase).
#
#   source scripts/lib/cache-dir.sh    sets and exports TRADING_CACHE_DIR, creating the folder, or
#                                      fails (status 1) naming what is wrong and what to set
#
# Before, each script spelt the default itself: with HOME unset it stopped on "HOME: unbound
# variable" (set -u), and with a HOME that cannot be written (read-only, not a folder) on the first
# mkdir or lock, without saying that TRADING_CACHE_DIR puts the cache elsewhere.
if [[ -z "${TRADING_CACHE_DIR:-}" ]]; then
	if [[ -z "${HOME:-}" ]]; then
		echo "[cache] ERROR: neither TRADING_CACHE_DIR nor HOME is set, so there is no folder for the builds' cache:" \
			"export TRADING_CACHE_DIR=<a writable folder with ~20 GB free> (the same one on every run: it keeps the stacks' passphrase) and run again" >&2
		return 1
	fi
	TRADING_CACHE_DIR=$HOME/.cache/ai-trading
fi
export TRADING_CACHE_DIR
if ! _cache_dir_err=$(mkdir -p -- "$TRADING_CACHE_DIR" 2>&1) || [[ ! -w "$TRADING_CACHE_DIR" ]]; then
	echo "[cache] ERROR: the cache folder $TRADING_CACHE_DIR cannot be written (${_cache_dir_err:-not writable}):" \
		"$(if [[ -n "${HOME:-}" && "$TRADING_CACHE_DIR" == "$HOME/.cache/ai-trading" ]]; then echo "HOME=$HOME is not writable here;"; fi)" \
		"export TRADING_CACHE_DIR=<a writable folder with ~20 GB free> (the same one on every run: it keeps the stacks' passphrase) and run again" >&2
	unset _cache_dir_err
	return 1
fi
unset _cache_dir_err
# Absolute, as the Go builds need it (GOMODCACHE/GOCACHE: "go: GOMODCACHE entry is relative") and
# as every script that changes folder must see the same one: a relative TRADING_CACHE_DIR is made
# absolute where it is first read (npm run up / npm test: from the clone's root), then exported.
[[ "$TRADING_CACHE_DIR" == /* ]] || TRADING_CACHE_DIR=$(CDPATH='' cd -- "$TRADING_CACHE_DIR" && pwd)
