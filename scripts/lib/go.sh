# shellcheck shell=bash
# The Go toolchain of the scripts that build from the Go module proxy (the Pulumi CLI and plugins,
# this repo's own plugins, the Weaviate server, actionlint, the local cluster). Source it, then:
#
#   find_go || exit 1     puts a usable `go` first on PATH (the one on PATH, else the first usable one
#                         in GO_FALLBACK_DIRS, default "/usr/local/go/bin /usr/lib/go/bin", where the
#                         go.dev tarball and Debian put it), or prints why there is none and what to install
#
# Usable means it runs and is Go >= GO_MIN_VERSION: every build here sets GOTOOLCHAIN=auto so that
# the Go a module's go.mod asks for is fetched from the proxy, and a Go older than 1.21 ignores
# GOTOOLCHAIN (Debian 12's golang-go is 1.19): its builds would fail minutes later, on a go.mod line.
GO_MIN_VERSION=1.21

# _go_check GO: prints nothing and succeeds when GO is usable, else prints why not.
_go_check() {
	local v
	# GOTOOLCHAIN=local: report this binary's own version, never fetch another one to answer.
	if ! v=$(GOTOOLCHAIN=local "$1" version 2>&1); then
		echo "$1 does not run (\`go version\`: ${v:0:200})"
	elif [[ ! "$v" =~ go([0-9]+)\.([0-9]+) ]]; then
		echo "$1 version says no version: ${v:0:200}"
	elif ((BASH_REMATCH[1] < ${GO_MIN_VERSION%%.*} || (BASH_REMATCH[1] == ${GO_MIN_VERSION%%.*} && BASH_REMATCH[2] < ${GO_MIN_VERSION#*.}))); then
		echo "$1 is go${BASH_REMATCH[1]}.${BASH_REMATCH[2]}, older than $GO_MIN_VERSION (the builds need GOTOOLCHAIN=auto to fetch the Go their go.mod asks for)"
	fi
}

find_go() {
	local g why reasons=()
	local dirs
	read -r -a dirs <<<"${GO_FALLBACK_DIRS-/usr/local/go/bin /usr/lib/go/bin}"
	for g in "$(command -v go 2>/dev/null || true)" "${dirs[@]/%//go}"; do
		[[ -n "$g" && -x "$g" ]] || continue
		why=$(_go_check "$g")
		if [[ -z "$why" ]]; then
			[[ "$PATH:" == "$(dirname "$g"):"* ]] || PATH="$(dirname "$g"):$PATH"
			export PATH
			return 0
		fi
		reasons+=("$why")
	done
	if ((${#reasons[@]} == 0)); then
		echo "[go] ERROR: no Go toolchain (none on PATH, nor in ${dirs[*]:-GO_FALLBACK_DIRS}): install Go >= $GO_MIN_VERSION" \
			"(the go.dev/dl tarball into /usr/local/go; Debian 12's golang-go is 1.19, too old) and run again" >&2
	else
		echo "[go] ERROR: no usable Go toolchain: $(printf '%s; ' "${reasons[@]}")install Go >= $GO_MIN_VERSION" \
			"(the go.dev/dl tarball into /usr/local/go; Debian 12's golang-go is 1.19, too old) and run again" >&2
	fi
	return 1
}
