# shellcheck shell=bash
# The long steps of a run (npm run up, npm test), each a process group of its own that the run waits
# for with `wait`, so that a signal to the run acts at once and reaches the step.
#
# Before, a step ran in the foreground, and bash runs a trap only after the foreground command ends:
# `npm run up` sent SIGTERM (kill, a supervisor, CI cancelling a job) or SIGHUP (the terminal or SSH
# session closed) during the 30-minute toolchain build or `pulumi up` did nothing until that step
# ended, and went on to the next step when the step did not see the signal itself. Ctrl-C reached
# the whole foreground group, so it worked.
#
#   source scripts/lib/steps.sh
#   run_step TAG CMD...   runs CMD (stdin /dev/null) in a process group of its own, without a
#                         controlling terminal (without_terminal); its status
#   stop_step SIGNAL      passes SIGNAL (INT stays INT; TERM and HUP are passed as TERM: the terminal
#                         is gone, and `pulumi` cancels gracefully on INT and TERM, not on HUP) to the
#                         running step's group, saying so, and waits for the step to end; then stops
#                         what it left in its group (TERM, then KILL). A step still running after
#                         STEP_STOP_SECONDS (default 300: a cancelled `pulumi up` finishes the
#                         operations under way) is killed (KILL), saying so
#
#   without_terminal CMD...  execs CMD (an external command) without a controlling terminal
#
# A step is a background process group of the terminal it was started from: there, the terminal
# stopped it (SIGTTOU, SIGTTIN) as soon as it wrote with `stty tostop` set, set terminal modes
# (stty, a password prompt) or read /dev/tty (sudo, ssh, a passphrase prompt), and the run waited
# for the stopped step for ever, without a word; Ctrl-C then took STEP_STOP_SECONDS, as a stopped
# process does not act on SIGINT. Without a controlling terminal nothing stops it: it writes to the
# terminal as before (its output still is one: colours, progress), and a prompt fails at once
# (/dev/tty: no such device) with the program's own message. Ctrl-C reaches it through the run's
# trap (stop_step INT), as before.
#
# The caller's traps call stop_step, e.g.
#   trap 'stop_step TERM; exit 143' TERM
# Only the step's own process group is signalled: another run's processes, and what a step started
# in groups of their own (scripts/tools/build-pulumi-tools.sh stops its jobs on the signal), are not.

_step_pid=""
_step_what=""
_step_tag=""
_step_starting=""
_step_last=""

# _step_group_alive PGID: whether a process of group PGID runs (zombies do not count).
_step_group_alive() {
	# /proc/<pid>/stat: "pid (comm) state ppid pgrp ...": the fields after the last ") ". Under
	# pipefail, cat must not fail the test: a process gone since the glob (cat exits 1), or awk
	# leaving early (SIGPIPE): awk reads to the end, and cat's status is dropped.
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v g="$1" '{ sub(/^.*\) /, ""); if ($3 == g && $1 != "Z") found = 1 } END { exit !found }'
}

# _step_running PID: whether PID runs (a zombie, ended but not yet waited for, does not).
_step_running() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ "${stat%% *}" != Z ]]
}

without_terminal() {
	# TIOCNOTTY gives up the controlling terminal of this process (not a session leader: nothing else
	# is signalled) and of what it starts; perl is in every Debian (perl-base). Not setsid(1): the
	# step is its group's leader, which cannot start a session, so setsid forks, and the command
	# would run in a group other than the one stop_step signals. Without /dev/tty
	# (cron, CI, setsid) there is nothing to give up.
	# PERL_BADLANG=0: no "perl: warning: Setting locale failed" on every step where the locale asked
	# for is not installed; the command gets PERL_BADLANG as it was.
	command -v perl >/dev/null 2>&1 || exec "$@"
	# shellcheck disable=SC2016 # perl's code, not the shell's
	exec env _STEP_PERL_BADLANG="${PERL_BADLANG+set:$PERL_BADLANG}" PERL_BADLANG=0 perl -e '
		my $badlang = delete $ENV{_STEP_PERL_BADLANG};
		if ($badlang =~ /^set:(.*)$/s) { $ENV{PERL_BADLANG} = $1 } else { delete $ENV{PERL_BADLANG} }
		if (open my $tty, "+<", "/dev/tty") {
			my $notty = eval { require "sys/ioctl.ph"; &TIOCNOTTY } // 0x5422;
			ioctl $tty, $notty, 0;
			close $tty;
		}
		exec { $ARGV[0] } @ARGV;
		print STDERR "cannot run $ARGV[0]: $!\n";
		exit 127;
	' -- "$@"
}

run_step() {
	local rc
	_step_tag=$1
	shift
	_step_what="$*"
	# A signal between the fork and `_step_pid=$!` runs the trap in between: stop_step then takes $!,
	# when it has changed since.
	_step_last=${!:-}
	_step_starting=1
	set -m
	without_terminal "$@" </dev/null &
	_step_pid=$!
	set +m
	_step_starting=""
	# `wait` returns at once when a trapped signal arrives; the trap stops the step (and normally
	# exits). Should a trap not exit, the step is waited for again.
	while :; do
		rc=0
		wait "$_step_pid" || rc=$?
		if [[ -z "$_step_pid" ]] || ! _step_group_alive "$_step_pid" || ! kill -0 "$_step_pid" 2>/dev/null; then break; fi
	done
	_step_pid=""
	return "$rc"
}

stop_step() {
	local sig=${1:-TERM} pid=$_step_pid limit=${STEP_STOP_SECONDS:-300} t0=$SECONDS
	[[ -n "$pid" || -z "$_step_starting" || "${!:-}" == "$_step_last" ]] || pid=$!
	if [[ -z "$pid" ]] || ! _step_group_alive "$pid"; then
		_step_pid=""
		return 0
	fi
	[[ "$sig" == INT ]] || sig=TERM
	echo "[$_step_tag] stopping the step under way (SIG$sig to its process group $pid: $_step_what);" \
		"waiting up to ${limit}s for it to end" >&2
	kill -"$sig" -- "-$pid" 2>/dev/null || true
	# A stopped process acts on the signal only once continued (SIGSTOP, Ctrl-Z on a step started
	# some other way): before, a stopped step took STEP_STOP_SECONDS and then KILL.
	kill -CONT -- "-$pid" 2>/dev/null || true
	# The step itself first: it ends its own work as it does on that signal (pulumi finishes the
	# operations under way). What it leaves of its group then goes (TERM; a background job of a
	# script ignores SIGINT), and after 5 s more whatever is still there (KILL).
	while _step_running "$pid" && ((SECONDS - t0 < limit)); do sleep 0.1; done
	if _step_running "$pid"; then
		echo "[$_step_tag] the step did not end within ${limit}s (STEP_STOP_SECONDS): killing it (KILL)" >&2
		kill -KILL -- "-$pid" 2>/dev/null || true
	elif _step_group_alive "$pid"; then
		kill -TERM -- "-$pid" 2>/dev/null || true
		kill -CONT -- "-$pid" 2>/dev/null || true
		t0=$SECONDS
		while _step_group_alive "$pid" && ((SECONDS - t0 < 5)); do sleep 0.1; done
		kill -KILL -- "-$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	_step_pid=""
}
