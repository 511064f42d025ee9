# shellcheck shell=bash
# Locks of the set-up scripts: `npm run up` and `npm test` started at once (or two clones, or CI
# beside a developer) wait for each other where they share something, instead of failing.
#
#   source scripts/lib/locks.sh
#   apt_get install -y -qq PKG...   apt-get that waits: for our other runs (flock), for any other
#                                   apt/dpkg (DPkg::Lock::Timeout), and retries `update` on the lists lock
#   hold_lock NAME                  takes ${TRADING_CACHE_DIR:-~/.cache/ai-trading}/locks/NAME.lock
#                                   until this shell exits (children inherit it); says when it waits
#   wait_for_lock FD FILE WHAT      flock FD (open on FILE), naming WHAT and who holds it when it waits
#
# LOCK_WAIT_SECONDS (default 3600) bounds every wait; past it the caller fails naming the lock.

# shellcheck source=cache-dir.sh
source "${BASH_SOURCE[0]%/*}/cache-dir.sh" || return 1 # TRADING_CACHE_DIR, or stops naming what to set
LOCKS_DIR=$TRADING_CACHE_DIR/locks
LOCK_WAIT_SECONDS=${LOCK_WAIT_SECONDS:-3600}

_lock_log() { echo "[lock] $*" >&2; }

# _lock_stopped_note PID: what to say of PID when it is stopped (Ctrl-Z in another terminal,
# SIGSTOP: it never lets go of a lock on its own), with how to continue it; nothing otherwise.
_lock_stopped_note() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	[[ "${stat%% *}" != T ]] || printf '[stopped: it holds the lock until continued, with fg in its terminal or kill -CONT %s]' "$1"
}

# _lock_holder_pids FILE: the pids of the processes with a descriptor open on FILE, one a line. Each
# descriptor's target is compared with FILE as text (awk ==): FILE is under TRADING_CACHE_DIR, a path of
# the user's, and as `find -lname`'s pattern a '*', '?' or '[' in it matched other files or not itself.
# The kernel shows a descriptor's target with symbolic links resolved: so is FILE (a cache folder reached
# through a link was matched by no descriptor).
_lock_holder_pids() {
	local file
	file=$(readlink -f -- "$1" 2>/dev/null) || file=$1
	find /proc/[0-9]*/fd -maxdepth 1 -type l -printf '%h\t%l\n' 2>/dev/null |
		LOCK_FILE=$file awk '{ tab = index($0, "\t") } substr($0, tab + 1) == ENVIRON["LOCK_FILE"] { split($0, part, "/"); print part[3] }' |
		sort -un
}

# _lock_holders FILE: "pid N (command)" of each live process that has FILE open, but this shell
# and what it started (they inherited the descriptor), a stopped one said so (_lock_stopped_note).
_lock_holders() {
	local p q cmd note
	for p in $(_lock_holder_pids "$1"); do
		q=$p
		while [[ "$q" != "$$" && "$q" -gt 1 ]]; do
			q=$(awk '/^PPid:/ { print $2 }' "/proc/$q/status" 2>/dev/null || true)
			q=${q:-0}
		done
		[[ "$q" != "$$" ]] || continue
		# Gone since (our own short-lived helpers among them): no command line left to show.
		cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | cut -c1-100) || true
		[[ -n "$cmd" ]] || continue
		printf 'pid %s (%s) ' "$p" "${cmd% }"
		note=$(_lock_stopped_note "$p")
		[[ -z "$note" ]] || printf '%s ' "$note"
	done
}

# _lock_who FILE: who holds the lock FILE, as said while waiting for it. The run that took it writes
# FILE.owner; when that run is gone (killed: SIGKILL, the OOM killer, a closed terminal) the lock
# is held by what it left running, which inherited the descriptor: those are named instead.
_lock_who() {
	local owner pid holders
	owner=$(cat "$1.owner" 2>/dev/null || true)
	pid=$(sed -n 's/^pid \([0-9]*\) .*/\1/p' <<<"$owner")
	if [[ -z "$pid" ]] || kill -0 "$pid" 2>/dev/null; then
		holders=""
		[[ -z "$pid" ]] || holders=$(_lock_stopped_note "$pid")
		echo "${owner:-another run} holds it${holders:+ $holders}"
		return 0
	fi
	holders=$(_lock_holders "$1")
	holders=${holders% }
	echo "the run that took it (${owner}) is gone, but what it left running still holds it:" \
		"${holders:-(none found)}; they end on their own, or stop them by their pids"
}

# hold_lock NAME: blocks until this shell holds the lock NAME (released when the shell exits).
hold_lock() {
	local name=$1 file fd t0=$SECONDS
	mkdir -p "$LOCKS_DIR"
	file=$LOCKS_DIR/$name.lock
	exec {fd}>>"$file"
	if ! flock -n "$fd"; then
		_lock_log "waiting for '$name': $(_lock_who "$file")"
		if ! flock -w "$LOCK_WAIT_SECONDS" "$fd"; then
			_lock_log "gave up waiting for '$name' after ${LOCK_WAIT_SECONDS}s ($file)"
			return 1
		fi
		_lock_log "got '$name' after $((SECONDS - t0))s"
	fi
	printf 'pid %s (%s) since %s\n' "$$" "$(basename "$0")" "$(date +%T)" >"$file.owner"
}

# wait_for_lock FD FILE WHAT: flock on descriptor FD, open on FILE, for scripts that keep their own
# lock files (the Weaviate, Kafka and cluster builds, the cluster's start and stop). Before, they
# waited without a word while another run held it; now the wait names WHAT and who holds FILE.
# It waits at most LOCK_WAIT_SECONDS, as hold_lock does; before, it waited for ever (a holder that
# was stopped or hung kept every later run waiting without an end).
wait_for_lock() {
	local fd=$1 file=$2 what=$3 t0=$SECONDS holders
	flock -n "$fd" && return 0
	holders=$(_lock_holders "$file")
	holders=${holders% }
	_lock_log "waiting for $what: ${holders:-another run} holds $file (at most ${LOCK_WAIT_SECONDS}s: LOCK_WAIT_SECONDS)"
	if ! flock -w "$LOCK_WAIT_SECONDS" "$fd"; then
		holders=$(_lock_holders "$file")
		holders=${holders% }
		_lock_log "ERROR: gave up waiting for $what after ${LOCK_WAIT_SECONDS}s (LOCK_WAIT_SECONDS):" \
			"${holders:-another run} still holds $file; let it end, or stop it by its pid, then run again"
		return 1
	fi
	_lock_log "got $what after $((SECONDS - t0))s"
}

# apt_get ARGS...: apt-get as root (sudo -n when not root) holding our apt lock, which is released
# before anything apt starts could inherit it (flock -o: an installed service keeps no lock).
# Quiet on success (callers pass -qq); on failure apt's output goes to stderr.
apt_get() {
	local sudo=() lock out rc deadline=$((SECONDS + LOCK_WAIT_SECONDS)) a pkgs=() opt=0
	# Without apt (not Debian/Ubuntu) or the rights to run it, name the packages to install by hand.
	for a in "$@"; do
		if ((opt)); then opt=0; continue; fi
		case $a in
		-o) opt=1 ;;
		-* | install | update) ;;
		*) pkgs+=("$a") ;;
		esac
	done
	if ! command -v apt-get >/dev/null 2>&1; then
		[[ "${1:-}" != update ]] || return 0 # nothing to update; the install that follows says what is missing
		_lock_log "ERROR: apt-get not found (this is not Debian or Ubuntu?): install ${pkgs[*]:-the packages} (Debian 12 names) yourself, then run again"
		return 1
	fi
	if [[ "$(id -u)" -ne 0 ]]; then
		sudo -n true 2>/dev/null || {
			_lock_log "ERROR: installing ${pkgs[*]:-packages} with apt needs root: run as root, or with a sudo that needs no password (sudo -n), or install them yourself"
			return 1
		}
		sudo=(sudo -n)
	fi
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
