# shellcheck shell=bash
# require_node: fails (status 2) when node is not on PATH or is older than package.json's engines.node
# (">=20"), naming what it found, before anything is installed or built. Debian 12's own nodejs is 18:
# on it `npm ci` only warns about the engines field (EBADENGINE) and the run went on (session 50).
require_node() {
	local root me want have
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	me=$(basename "$0" .sh)
	want=""
	[[ ! -f "$root/package.json" ]] || want=$(sed -n 's/^ *"node": *">=\([0-9][0-9]*\).*/\1/p' "$root/package.json" | head -n1)
	want=${want:-20}
	if ! have=$(node -p 'process.versions.node' 2>/dev/null) || [[ -z "$have" ]]; then
		echo "[$me] no node on PATH: Node $want or later is needed (README, Prerequisites); install it and run again" >&2
		return 2
	fi
	if [[ ! "${have%%.*}" =~ ^[0-9]+$ || "${have%%.*}" -lt "$want" ]]; then
		echo "[$me] Node $want or later is needed, and the node on PATH ($(command -v node)) is $have" \
			"(Debian 12's own nodejs is 18): install Node $want (nodesource's Debian packages, or nvm) and run again" >&2
		return 2
	fi
}
