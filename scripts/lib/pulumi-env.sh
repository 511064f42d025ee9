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

_pulumi_env_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export TRADING_CACHE_DIR=${TRADING_CACHE_DIR:-$HOME/.cache/ai-trading}

case ":$PATH:" in
*":$_pulumi_env_root/.tools/bin:"*) ;;
*) export PATH="$_pulumi_env_root/.tools/bin:$PATH" ;;
esac

export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$_pulumi_env_root/.pulumi-state}
case $PULUMI_BACKEND_URL in
file://*) mkdir -p "${PULUMI_BACKEND_URL#file://}" ;;
esac

if [[ -z "${PULUMI_CONFIG_PASSPHRASE+x}" && -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]]; then
	_pulumi_env_pass=$TRADING_CACHE_DIR/pulumi-passphrase
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

export PULUMI_HOME=${PULUMI_HOME:-$TRADING_CACHE_DIR/pulumi-home}
mkdir -p "$PULUMI_HOME"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true

unset _pulumi_env_root
