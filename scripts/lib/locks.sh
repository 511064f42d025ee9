# shellcheck shell=bash
# Locks of the set-up scripts: `npm run up` and `npm test` started at once (or two clones, or CI
# beside a developer) wait for each other where they share something, instead of failing.
#
#   source scripts/lib/locks.sh
#   apt_get install -y -qq PKG...   apt-get that waits: for our other runs (flock), for any other
#                                   apt/dpkg (DPkg::Lock::Timeout), and retries `update` on the lists lock
#   hold_lock NAME                  takes ${TRADING_CACHE_DIR:-~/.cache/ai-trading}/locks/NAME.lock
#                                   until this shell exits (children inherit it); says when it waits
#
# LOCK_WAIT_SECONDS (default 3600) bounds every wait; past it the caller fails naming the lock.

LOCKS_DIR=${TRADING_CACHE_DIR:-$HOME/.cache/ai-trading}/locks
LOCK_WAIT_SECONDS=${LOCK_WAIT_SECONDS:-3600}

_lock_log() { echo "[lock] $*" >&2; }

# hold_lock NAME: blocks until this shell holds the lock NAME (released when the shell exits).
hold_lock() {
	local name=$1 file fd t0=$SECONDS
	mkdir -p "$LOCKS_DIR"
	file=$LOCKS_DIR/$name.lock
	exec {fd}>>"$file"
	if ! flock -n "$fd"; then
		_lock_log "waiting for '$name': $(cat "$file.owner" 2>/dev/null || echo 'another run') holds it"
		if ! flock -w "$LOCK_WAIT_SECONDS" "$fd"; then
			_lock_log "gave up waiting for '$name' after ${LOCK_WAIT_SECONDS}s ($file)"
			return 1
		fi
		_lock_log "got '$name' after $((SECONDS - t0))s"
	fi
	printf 'pid %s (%s) since %s\n' "$$" "$(basename "$0")" "$(date +%T)" >"$file.owner"
}

# apt_get ARGS...: apt-get as root (sudo -n when not root) holding our apt lock, which is released
# before anything apt starts could inherit it (flock -o: an installed service keeps no lock).
# Quiet on success (callers pass -qq); on failure apt's output goes to stderr.
apt_get() {
	local sudo=() lock out rc deadline=$((SECONDS + LOCK_WAIT_SECONDS))
	[[ "$(id -u)" -eq 0 ]] || sudo=(sudo -n)
	mkdir -p "$LOCKS_DIR"
	lock=$LOCKS_DIR/apt.lock
	flock -n "$lock" true 2>/dev/null || _lock_log "waiting for 'apt': another run of this repo's scripts is installing packages"
	while :; do
		out=$("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive flock -o -w "$LOCK_WAIT_SECONDS" "$lock" \
			apt-get -o DPkg::Lock::Timeout="$LOCK_WAIT_SECONDS" "$@" 2>&1) && rc=0 || rc=$?
		# `apt-get update` does not wait for the lists lock: another apt holds it, try again.
		if ((rc != 0)) && grep -q 'Could not get lock' <<<"$out" && ((SECONDS < deadline)); then
			_lock_log "waiting for apt's lock: $(grep -m1 'Could not get lock' <<<"$out")"
			sleep 5
			continue
		fi
		((rc == 0)) || printf '%s\n' "$out" >&2
		return "$rc"
	done
}
