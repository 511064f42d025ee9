# shellcheck shell=bash
# require_stack <stack>: fails (status 2) naming the stacks there are when Pulumi.<stack>.yaml is
# missing or sets no trading:target, before anything is installed, built or started.
require_stack() {
	local stack=$1 root stacks me
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	me=$(basename "$0" .sh)
	stacks=$(cd "$root" && for f in Pulumi.*.yaml; do [[ -f "$f" ]] && f=${f#Pulumi.} && printf '%s ' "${f%.yaml}"; done)
	if [[ ! "$stack" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ || ! -f "$root/Pulumi.$stack.yaml" ]]; then
		echo "[$me] no stack '$stack': there is no Pulumi.$stack.yaml in $root (the stacks: ${stacks% }; e.g. npm run $me -- dev)" >&2
		return 2
	fi
	grep -qE '^ *trading:target: *"?[a-z]' "$root/Pulumi.$stack.yaml" || {
		echo "[$me] Pulumi.$stack.yaml has no trading:target (docker or kubernetes): add it, or use one of the stacks: ${stacks% }" >&2
		return 2
	}
}

# policy_config_of <stack>: prints the policy pack's config `npm run up` enforces for the stack:
# policies/config/<stack>.json, or dev.json for a development stack (dev-*, as the stack config's
# isDevStack); fails (status 2) for any other stack without one, naming the file to write, before
# anything is built. Before (session 50), such a stack was deployed with no policy pack at all.
policy_config_of() {
	local stack=$1 root me
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	me=$(basename "$0" .sh)
	if [[ -f "$root/policies/config/$stack.json" ]]; then
		echo "policies/config/$stack.json"
	elif [[ "$stack" == dev-* && -f "$root/policies/config/dev.json" ]]; then
		echo "[$me] stack $stack has no policies/config/$stack.json: the policy pack runs with dev.json, a development stack's" >&2
		echo "policies/config/dev.json"
	else
		echo "[$me] stack $stack has no policy pack configuration (policies/config/$stack.json), and a stack is deployed only with the pack enforced:" \
			"copy the one it is closest to (cp policies/config/prod.json policies/config/$stack.json) and review it, or name a development stack dev-<name> (dev.json)" >&2
		return 2
	fi
}

# stack_config_file <stack>: prints the config file `pulumi --config-file` should use for the stack.
#
# The CLI writes the stack's encryption salt (tied to this machine's passphrase) into the stack's
# config file. Kept in the tracked Pulumi.<stack>.yaml it would break every other machine's
# passphrase, so each backend keeps a private copy: the tracked settings, refreshed on every run,
# plus that backend's salt. Source scripts/lib/pulumi-env.sh first.
stack_config_file() {
	local stack=$1 root dir file salt tmp tracked_salt=""
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	case ${PULUMI_BACKEND_URL:-} in
	file://*) dir="${PULUMI_BACKEND_URL#file://}/stack-config" ;;
	*) dir="${TRADING_CACHE_DIR:-$HOME/.cache/ai-trading}/stack-config" ;;
	esac
	mkdir -p "$dir"
	file="$dir/Pulumi.$stack.yaml"
	salt=""
	[[ -f "$file" ]] && salt=$(grep -E '^encryptionsalt:' "$file" || true)
	# `pulumi stack init/select --create` has no --config-file and writes a new stack's salt into
	# the tracked file: move it into the private copy and leave the tracked file as it was.
	if grep -qE '^encryptionsalt:' "$root/Pulumi.$stack.yaml"; then
		salt=$(grep -E '^encryptionsalt:' "$root/Pulumi.$stack.yaml")
		tracked_salt=1
	fi
	# Written beside it and renamed into place only when whole, and the salt taken out of the
	# tracked file only then: this runs in $(...), where set -e does not act, and on a full disk a
	# cut-short copy replaced the one holding the stack's salt (or the salt went from both).
	if ! tmp=$(mktemp "$file.XXXXXX" 2>/dev/null) ||
		! { [[ -z "$salt" ]] || echo "$salt"; } >"$tmp" ||
		! grep -vE '^encryptionsalt:' "$root/Pulumi.$stack.yaml" >>"$tmp" ||
		! mv -f "$tmp" "$file"; then
		[[ -z "${tmp:-}" ]] || rm -f "$tmp"
		echo "[$(basename "$0" .sh)] ERROR: could not write stack $stack's config copy $file (a full disk? df -h '$dir'):" \
			"the one there was is kept${tracked_salt:+, and the encryptionsalt stays in Pulumi.$stack.yaml}; free space and run again" >&2
		return 1
	fi
	[[ -z "$tracked_salt" ]] || sed -i '/^encryptionsalt:/d' "$root/Pulumi.$stack.yaml"
	echo "$file"
}
