# shellcheck shell=bash
# Offline Pulumi environment for this repo. Source it (bash):
#   source scripts/lib/pulumi-env.sh
# It puts <repo>/.tools/bin (built by scripts/tools/build-pulumi-tools.sh) first on PATH and sets:
#   PULUMI_BACKEND_URL            default file://<repo>/.pulumi-state (created; git-ignored)
#   PULUMI_CONFIG_PASSPHRASE_FILE default $TRADING_CACHE_DIR/pulumi-passphrase (generated, mode 600,
#                                 outside git), unless PULUMI_CONFIG_PASSPHRASE(_FILE) is already set
#   PULUMI_HOME                   default $TRADING_CACHE_DIR/pulumi-home (plugins, workspace files)
#   PULUMI_SKIP_UPDATE_CHECK=true, PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
# Keep the passphrase file: the stack's secrets in .pulumi-state are encrypted with it.
# Safe to source more than once; does not change shell options.
#
# A file backend that already holds stacks is never given a new passphrase: when the passphrase
# file is missing (a cleared cache, another HOME or TRADING_CACHE_DIR) sourcing fails, naming it,
# instead of generating one the stacks' secrets do not open with. The backend keeps a fingerprint
# of its passphrase (<state>/.passphrase-sha256: a SHA-256 and where the passphrase came from);
# another passphrase for it fails the same way, naming the one the stacks were made with.
# PULUMI_ENV_TOOLS_ONLY=1 (the toolchain build) skips the passphrase altogether.

_pulumi_env_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=cache-dir.sh
source "${BASH_SOURCE[0]%/*}/cache-dir.sh" || return 1 # TRADING_CACHE_DIR, or stops naming what to set

case ":$PATH:" in
*":$_pulumi_env_root/.tools/bin:"*) ;;
*) export PATH="$_pulumi_env_root/.tools/bin:$PATH" ;;
esac

export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$_pulumi_env_root/.pulumi-state}
case $PULUMI_BACKEND_URL in
file://*) mkdir -p "${PULUMI_BACKEND_URL#file://}" ;;
esac

# _pulumi_env_state: the file backend's directory (empty for another backend).
_pulumi_env_state() { case $PULUMI_BACKEND_URL in file://*) echo "${PULUMI_BACKEND_URL#file://}" ;; esac; }
# _pulumi_env_has_stacks: does the file backend hold a stack already?
_pulumi_env_has_stacks() {
	local state
	state=$(_pulumi_env_state)
	[[ -n "$state" && -n "$(find "$state/.pulumi/stacks" \( -name '*.json' -o -name '*.json.gz' \) -print -quit 2>/dev/null)" ]]
}
# _pulumi_env_fingerprint: "sha256:<hex> <source>" of the passphrase this environment gives Pulumi.
_pulumi_env_fingerprint() {
	local value source
	if [[ -n "${PULUMI_CONFIG_PASSPHRASE+x}" ]]; then
		value=$PULUMI_CONFIG_PASSPHRASE source=PULUMI_CONFIG_PASSPHRASE
	else
		value=$(<"$PULUMI_CONFIG_PASSPHRASE_FILE") source=$PULUMI_CONFIG_PASSPHRASE_FILE
	fi
	printf 'sha256:%s %s\n' "$(printf '%s' "$value" | sha256sum | cut -d' ' -f1)" "$source"
}
# pulumi_env_record_passphrase: keeps the fingerprint of this environment's passphrase in the file
# backend (scripts/up.sh calls it once `pulumi up` has opened the stack's secrets with it).
# Written beside it and renamed into place: on a full disk the fingerprint there was stays (before,
# `>` emptied it, and every later run was refused as made "with the passphrase from " nothing).
pulumi_env_record_passphrase() {
	local state tmp
	state=$(_pulumi_env_state)
	[[ -n "$state" ]] || return 0
	if ! tmp=$(mktemp "$state/.passphrase-sha256.XXXXXX" 2>/dev/null) || ! _pulumi_env_fingerprint >"$tmp" || ! mv -f "$tmp" "$state/.passphrase-sha256"; then
		[[ -z "${tmp:-}" ]] || rm -f "$tmp"
		echo "[pulumi-env] ERROR: could not write the passphrase's fingerprint $state/.passphrase-sha256" \
			"(a full disk? df -h '$state'): the one there was is kept; free space and run again" >&2
		return 1
	fi
}
# _pulumi_env_known_fingerprint FILE: the "sha256:<hex>" FILE keeps, or nothing when it keeps none
# (emptied by a full disk before the write above was made safe): then the check below is skipped,
# and pulumi up records it again.
_pulumi_env_known_fingerprint() {
	local known
	known=$(cut -d' ' -f1 "$1" 2>/dev/null) || true
	[[ "$known" =~ ^sha256:[0-9a-f]{64}$ ]] && echo "$known"
}

if [[ "${PULUMI_ENV_TOOLS_ONLY:-0}" != 1 && -z "${PULUMI_CONFIG_PASSPHRASE+x}" && -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]]; then
	_pulumi_env_pass=$TRADING_CACHE_DIR/pulumi-passphrase
	if [[ ! -s "$_pulumi_env_pass" ]] && _pulumi_env_has_stacks; then
		echo "[pulumi-env] ERROR: the passphrase file $_pulumi_env_pass is missing, but the backend" \
			"$(_pulumi_env_state) holds stacks whose secrets were encrypted with a passphrase: a new one would not open them." \
			"$(if [[ -f "$(_pulumi_env_state)/.passphrase-sha256" ]]; then
				echo "They were made with the one from $(cut -d' ' -f2- "$(_pulumi_env_state)/.passphrase-sha256")."
			fi)" \
			"Restore that file (or run with the TRADING_CACHE_DIR, or PULUMI_CONFIG_PASSPHRASE_FILE, that the stacks were made with)." >&2
		unset _pulumi_env_pass
		return 1
	fi
	if [[ ! -s "$_pulumi_env_pass" ]]; then
		mkdir -p "$TRADING_CACHE_DIR"
		(
			umask 077
			if command -v openssl >/dev/null 2>&1; then
				openssl rand -base64 32 >"$_pulumi_env_pass"
			else
				head -c 32 /dev/urandom | base64 >"$_pulumi_env_pass"
			fi
		)
	fi
	chmod 600 "$_pulumi_env_pass"
	export PULUMI_CONFIG_PASSPHRASE_FILE=$_pulumi_env_pass
	unset _pulumi_env_pass
fi
if [[ "${PULUMI_ENV_TOOLS_ONLY:-0}" != 1 ]] && _pulumi_env_has_stacks; then
	_pulumi_env_known=$(_pulumi_env_state)/.passphrase-sha256
	if [[ -f "$_pulumi_env_known" && ! -s "$_pulumi_env_known" ]] || { [[ -f "$_pulumi_env_known" ]] && ! _pulumi_env_known_fingerprint "$_pulumi_env_known" >/dev/null; }; then
		echo "[pulumi-env] $_pulumi_env_known keeps no fingerprint (emptied or cut short, a full disk?): not used; the next pulumi up records it again" >&2
	elif [[ -f "$_pulumi_env_known" ]] && [[ "$(_pulumi_env_known_fingerprint "$_pulumi_env_known")" != "$(_pulumi_env_fingerprint | cut -d' ' -f1)" ]]; then
		echo "[pulumi-env] ERROR: the stacks in $(_pulumi_env_state) were made with the passphrase from" \
			"$(cut -d' ' -f2- "$_pulumi_env_known"), not the one from $(_pulumi_env_fingerprint | cut -d' ' -f2-)" \
			"(TRADING_CACHE_DIR=$TRADING_CACHE_DIR): pulumi would refuse it (incorrect passphrase). Run with the TRADING_CACHE_DIR," \
			"or PULUMI_CONFIG_PASSPHRASE_FILE, that they were made with." >&2
		unset _pulumi_env_known
		return 1
	fi
	unset _pulumi_env_known
elif [[ "${PULUMI_ENV_TOOLS_ONLY:-0}" != 1 ]] && [[ -n "$(_pulumi_env_state)" ]]; then
	# A backend with no stack yet: the next stack is made with this passphrase.
	pulumi_env_record_passphrase
fi

export PULUMI_HOME=${PULUMI_HOME:-$TRADING_CACHE_DIR/pulumi-home}
mkdir -p "$PULUMI_HOME"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true

unset _pulumi_env_root
