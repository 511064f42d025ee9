#!/usr/bin/env bash
# Builds what a stack needs of the Pulumi toolchain from the Go module proxy (no GitHub, no
# get.pulumi.com), then links it into <repo>/.tools/bin:
#   every stack:             the pulumi CLI, the Node language host, pulumi-resource-random and
#                            pulumi-resource-docker (this repo's own plugins, tools/providers)
#   kubernetes-target stacks: also pulumi-resource-kubernetes (the long build: ~30 min cold)
#
#   bash scripts/tools/build-pulumi-tools.sh dev     # what Pulumi.dev.yaml's trading:target needs
#   bash scripts/tools/build-pulumi-tools.sh         # everything (PULUMI_TOOLS_STACK=all)
#   bash scripts/tools/build-pulumi-tools.sh --plan prod   # print the steps a stack needs, build nothing
#   source scripts/lib/pulumi-env.sh                 # PATH + offline Pulumi environment
#
# Idempotent and cached: a second run takes seconds. Independent builds run in parallel (the CLI,
# the language host, this repo's plugins, the kubernetes provider); each step prints one line when
# it starts (step n of m, what and why, the time the last run took), a line every
# PULUMI_TOOLS_PROGRESS_SECONDS (default 30) while it builds, and one when it ends; the build
# output goes to a log per step, whose tail is shown when the step fails. Build times are recorded
# in <cache>/pulumi-tools/timings.tsv for the next run's estimates (before any run on a machine,
# scripts/tools/build-times.tsv, measured on this kind of machine, is the estimate).
# Concurrent runs (`npm run up` beside `npm test`, another clone, CI) wait for each other on a lock
# of the tools cache, then reuse what the first one built.
#
# Heavy work is cached outside the clone in ${TRADING_CACHE_DIR:-$HOME/.cache/ai-trading}/pulumi-tools:
#   go/{mod,build}         GOMODCACHE / GOCACHE shared by every build (and by CI on this machine)
#   <name>-<version>/bin   finished binaries, with a .stamp naming what was built
#   unavailable/           versions the proxy refused (not probed again; PULUMI_TOOLS_RETRY=1 re-probes)
#   logs/<step>.log        the output of the last build of each step
#
# Versions: scripts/tools/versions.env. A pulumi CLI >= PULUMI_CLI_MIN_VERSION already on PATH
# (outside .tools/bin) is used as it is; then only missing plugins are built.
# Environment knobs: PULUMI_TOOLS_STACK (the stack, when no argument), PULUMI_TOOLS_RETRY=1,
# PULUMI_TOOLS_FORCE=1 (rebuild everything), PULUMI_TOOLS_STRICT=1 (exit non-zero when a provider
# plugin cannot be built), PULUMI_TOOLS_SERIAL=1 (one build at a time).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
# shellcheck source=versions.env
source "$SCRIPT_DIR/versions.env"
# shellcheck source=../lib/locks.sh
source "$ROOT/scripts/lib/locks.sh"
# shellcheck source=../lib/go.sh
source "$ROOT/scripts/lib/go.sh"

# shellcheck source=../lib/cache-dir.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cache-dir.sh" || exit 1 # TRADING_CACHE_DIR, or stops naming what to set
CACHE_DIR=$TRADING_CACHE_DIR
TOOLS_CACHE=$CACHE_DIR/pulumi-tools
BIN_DIR=$ROOT/.tools/bin
UNAVAILABLE_DIR=$TOOLS_CACHE/unavailable
STEP_LOG_DIR=$TOOLS_CACHE/logs
TIMINGS=$TOOLS_CACHE/timings.tsv
REFERENCE_TIMINGS=$SCRIPT_DIR/build-times.tsv
PROGRESS_SECONDS=${PULUMI_TOOLS_PROGRESS_SECONDS:-30}
mkdir -p "$TOOLS_CACHE" "$BIN_DIR" "$UNAVAILABLE_DIR" "$STEP_LOG_DIR"

export GOPATH=$TOOLS_CACHE/go
export GOMODCACHE=$TOOLS_CACHE/go/mod
export GOCACHE=$TOOLS_CACHE/go/build
# go.mod files that ask for a newer Go get it from the proxy.
export GOTOOLCHAIN=auto
export CGO_ENABLED=0
# Never -mod=mod: build with each repo's own go.mod/go.sum (the default -mod=readonly).
export GOFLAGS=-buildvcs=false
unset GOWORK || true

PULUMI_LH_MODULE=github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3

log() { printf '[pulumi-tools] %s\n' "$*" >&2; }

now_ns() { date +%s%N; }
secs_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }
# human SECONDS: 75 -> 1m15s
human() { awk -v s="$1" 'BEGIN { s = int(s + 0.5); if (s >= 60) printf "%dm%02ds", s / 60, s % 60; else printf "%ds", s }'; }

# ---------------------------------------------------------------------------------------------
# What the stack needs.
PLAN_ONLY=0
if [[ "${1:-}" == --plan ]]; then
	PLAN_ONLY=1
	shift
fi
STACK=${1:-${PULUMI_TOOLS_STACK:-all}}
case $STACK in
all) TARGET=all ;;
*)
	TARGET=$(sed -n 's/^ *trading:target: *"\{0,1\}\([a-z]*\)"\{0,1\} *$/\1/p' "$ROOT/Pulumi.$STACK.yaml" 2>/dev/null | head -n1 || true)
	[[ -n "$TARGET" ]] || {
		log "ERROR: Pulumi.$STACK.yaml has no trading:target (a stack name, or 'all')"
		exit 2
	}
	;;
esac
NEED_KUBERNETES=0
[[ $TARGET == docker ]] || NEED_KUBERNETES=1

# ---------------------------------------------------------------------------------------------
# Steps: progress lines, logs, recorded times.
STEPS=(cli langhost random docker)
((NEED_KUBERNETES)) && STEPS+=(kubernetes)
declare -A STEP_WHAT=(
	[cli]="pulumi CLI"
	[langhost]="Node language host"
	[random]="pulumi-resource-random"
	[docker]="pulumi-resource-docker"
	[kubernetes]="pulumi-resource-kubernetes"
)
declare -A STEP_WHY=(
	[cli]="runs pulumi up/preview/destroy"
	[langhost]="runs the TypeScript program and the policy pack"
	[random]="the stack's generated passwords and keys"
	[docker]="networks, volumes, images and containers of the docker target"
	[kubernetes]="every object of the kubernetes target"
)
step_no() {
	local i
	for i in "${!STEPS[@]}"; do [[ ${STEPS[$i]} != "$1" ]] || echo "$((i + 1))/${#STEPS[@]}"; done
}
step_log() { log "step $(step_no "$1") ${STEP_WHAT[$1]}: $2"; }
if ((PLAN_ONLY)); then
	for s in "${STEPS[@]}"; do printf '%s\t%s\t%s\n' "$s" "${STEP_WHAT[$s]}" "${STEP_WHY[$s]}"; done
	exit 0
fi
# Every step builds with Go: without a usable one, say so now (before, each step failed on its own,
# and each failure was recorded as "not served", which the next run, Go installed, believed).
find_go || {
	log "ERROR: the Pulumi CLI and plugins are built from the Go module proxy and need Go (see above)"
	exit 1
}

# last_time KEY: seconds the last build of KEY took (this machine's record, else the reference).
last_time() {
	local f t
	for f in "$TIMINGS" "$REFERENCE_TIMINGS"; do
		t=$(awk -F'\t' -v k="$1" '$1 == k { t = $2 } END { print t }' "$f" 2>/dev/null)
		[[ -z "$t" ]] || {
			printf '%s %s\n' "$t" "$([[ $f == "$TIMINGS" ]] && echo "the last run" || echo "the reference build (scripts/tools/build-times.tsv)")"
			return 0
		}
	done
	return 1
}
record_time() { # KEY SECONDS
	printf '%s\t%s\t%s\n' "$1" "$2" "$(date -u +%FT%TZ)" >>"$TIMINGS"
}

# build_step STEP KEY LABEL FUNC ARGS...: runs FUNC with its output in logs/KEY.log; prints the
# start (with the estimate), a progress line every PROGRESS_SECONDS, and the end. Leaves FUNC's
# status in STEP_RC and returns 0: it must not be called in a conditional context (if/&&/||), or
# errexit would be ignored inside FUNC.
STEP_RC=0
build_step() {
	local step=$1 key=$2 label=$3 t0 est hb rc
	shift 3
	t0=$(now_ns)
	if est=$(last_time "$key"); then
		est="${est#* } took $(human "${est%% *}")"
	else
		est="no estimate: first build on this machine"
	fi
	step_log "$step" "building $label (${STEP_WHY[$step]}); $est; log: $STEP_LOG_DIR/$key.log"
	(
		# Progress until the build ends (killed below; short sleeps, so that no orphan outlives
		# the script by more than a second holding the tools lock it inherited).
		n=0
		while sleep 1; do
			((++n % PROGRESS_SECONDS)) || step_log "$step" "building, $(human "$(secs_since "$t0")") elapsed; $est"
		done
	) &
	hb=$!
	set +e
	(
		set -e
		"$@"
	) >"$STEP_LOG_DIR/$key.log" 2>&1
	rc=$?
	set -e
	kill "$hb" 2>/dev/null || true
	wait "$hb" 2>/dev/null || true
	if ((rc == 0)); then
		record_time "$key" "$(secs_since "$t0")"
		step_log "$step" "built in $(human "$(secs_since "$t0")")"
	else
		step_log "$step" "FAILED after $(human "$(secs_since "$t0")") (exit $rc); last lines of $STEP_LOG_DIR/$key.log:"
		tail -n 15 "$STEP_LOG_DIR/$key.log" | sed 's/^/    /' >&2
	fi
	STEP_RC=$rc
}

# version_ge A B: semver-ish A >= B (numeric x.y.z; pre-release suffixes ignored).
version_ge() {
	local a=${1#v} b=${2#v}
	a=${a%%[-+]*}
	b=${b%%[-+]*}
	[[ "$(printf '%s\n%s\n' "$a" "$b" | sort -V | head -n1)" == "$b" ]]
}

# mod_dir MODULE@VERSION: downloads a module through the proxy and prints its (read-only) directory.
mod_dir() {
	local json dir
	json=$(go mod download -json "$1") || return 1
	dir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
	[[ -n "$dir" && -d "$dir" ]] || {
		printf '%s\n' "$json" >&2
		return 1
	}
	printf '%s\n' "$dir"
}

# copy_tree SRC DST: writable copy of a module tree.
copy_tree() {
	rm -rf "$2"
	mkdir -p "$(dirname "$2")"
	cp -r "$1" "$2"
	chmod -R u+w "$2"
}

# release_pseudo MODULE_ROOT MAJOR VERSION: pseudo-version of the commit that carries the
# <MODULE_ROOT>/sdk/v<VERSION> tag, for a sibling module without tags (provider/v<MAJOR>).
# Exit 1 when the proxy refuses that tag, 2 when it did not answer (logged).
release_pseudo() {
	local out
	if ! out=$(go list -m -f '{{.Time.UTC.Format "20060102150405"}} {{with .Origin}}{{.Hash}}{{end}}' \
		"$1/sdk/v$2@v$3" 2>&1); then
		! refused_by_proxy <<<"$out" || return 1
		log "$1/sdk/v$2@v$3: no answer from the Go proxy: ${out:0:300}"
		return 2
	fi
	out=$(tail -n1 <<<"$out")
	local t=${out%% *} h=${out#* }
	[[ -n "$t" && ${#h} -ge 12 ]] || return 1
	printf 'v%s.0.0-%s-%s\n' "$2" "$t" "${h:0:12}"
}

# Is DIR built with KEY and are its binaries present?
is_built() {
	local dir=$1 key=$2 b
	shift 2
	[[ "${PULUMI_TOOLS_FORCE:-0}" != 1 && -f "$dir/.stamp" && "$(cat "$dir/.stamp")" == "$key" ]] || return 1
	for b in "$@"; do [[ -x "$dir/bin/$b" ]] || return 1; done
}

mark_unavailable() { printf '%s\n' "$2" >"$UNAVAILABLE_DIR/$1"; }
# refused_by_proxy < OUTPUT: did the Go proxy refuse a module in this go output (an HTTP 403, 404 or
# 410, an unknown revision or version)? Only such a refusal is recorded as unavailable: a failure of
# anything else (no network, a full disk, a killed or failed compile) is tried again by the next run.
# (A module record without its Origin, as this machine's proxy serves them, cannot be pinned to a commit: the same.)
refused_by_proxy() { grep -qE 'reading https?://[^ ]*: (403|404|410) |unknown revision|invalid version|no matching versions|carries no Origin'; }
# not_recorded STEP WHAT LOG: says why a failed build was not recorded as unavailable.
not_recorded() { step_log "$1" "$2 failed, not because the Go proxy refused it (see $3): not recorded as unavailable, the next run tries it again"; }
known_unavailable() { [[ "${PULUMI_TOOLS_RETRY:-0}" != 1 && -f "$UNAVAILABLE_DIR/$1" ]]; }

# link_bin SRC: hard link (same file system) or copy into .tools/bin. A hard link (not a symlink)
# keeps the CLI's own directory = .tools/bin, where it looks for the language host first.
link_bin() {
	local dst
	dst=$BIN_DIR/$(basename "$1")
	if [[ -e "$dst" && "$1" -ef "$dst" ]]; then return 0; fi
	rm -f "$dst"
	ln "$1" "$dst" 2>/dev/null || cp -p "$1" "$dst"
}

# ---------------------------------------------------------------------------------------------
# Pulumi CLI
build_cli() { # VERSION DIR
	local ver=$1 dir=$2 pkg sdk
	pkg=$(mod_dir "github.com/pulumi/pulumi/pkg/v3@v$ver")
	sdk=$(mod_dir "github.com/pulumi/pulumi/sdk/v3@v$ver")
	rm -rf "${dir:?}/bin" "${dir:?}/.stamp"
	copy_tree "$pkg" "$dir/src/pkg" # its go.mod: replace github.com/pulumi/pulumi/sdk/v3 => ../sdk
	copy_tree "$sdk" "$dir/src/sdk"
	mkdir -p "$dir/bin"
	(cd "$dir/src/pkg" && go build -trimpath \
		-ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$ver" \
		-o "$dir/bin/pulumi" ./cmd/pulumi)
	# Dynamic providers (pulumi.dynamic.Resource) need this small script next to the CLI.
	cp "$dir/src/sdk/nodejs/dist/pulumi-resource-pulumi-nodejs" "$dir/bin/"
	chmod 755 "$dir/bin/pulumi-resource-pulumi-nodejs"
	"$dir/bin/pulumi" version
	rm -rf "$dir/src"
	printf 'pulumi v%s\n' "$ver" >"$dir/.stamp"
}

# Node language host from its own module at the CLI tag's commit (the notes' recipe).
build_langhost_module() { # CLI_VERSION DIR
	local ver=$1 dir=$2 hash lh pkg sdk
	hash=$(go list -m -f '{{with .Origin}}{{.Hash}}{{end}}' "github.com/pulumi/pulumi/pkg/v3@v$ver")
	# The language host's own module is pinned by the CLI's commit, which only the proxy's Origin record gives: a
	# proxy that serves the module without it (this machine's) leaves the fallback below, said here, not an empty log.
	[[ -n "$hash" ]] || {
		log "no commit for github.com/pulumi/pulumi/pkg/v3@v$ver: the Go proxy's record of it carries no Origin (go list -m -f '{{.Origin}}' is empty), so $PULUMI_LH_MODULE cannot be pinned to it"
		return 1
	}
	lh=$(mod_dir "$PULUMI_LH_MODULE@$hash")
	pkg=$(mod_dir "github.com/pulumi/pulumi/pkg/v3@v$ver")
	sdk=$(mod_dir "github.com/pulumi/pulumi/sdk/v3@v$ver")
	rm -rf "${dir:?}/bin" "${dir:?}/.stamp"
	copy_tree "$pkg" "$dir/src/pkg"
	copy_tree "$sdk" "$dir/src/sdk"
	copy_tree "$lh" "$dir/src/sdk/nodejs/cmd/pulumi-language-nodejs" # replaces pkg/sdk by relative paths
	mkdir -p "$dir/bin"
	(cd "$dir/src/sdk/nodejs/cmd/pulumi-language-nodejs" && go build -trimpath \
		-ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$ver" \
		-o "$dir/bin/pulumi-language-nodejs" .)
	rm -rf "$dir/src"
	printf 'pulumi-language-nodejs module@%s\n' "$hash" >"$dir/.stamp"
}

LANGHOST_PATCH=$SCRIPT_DIR/patches/langhost_runplugin.go
langhost_sdk_key() { printf 'pulumi-language-nodejs sdk/v3@v%s runplugin-patch:%s' "$1" "$(cksum <"$LANGHOST_PATCH" | cut -d' ' -f1)"; }

# Node language host from an sdk/v3 release that still carried it inside the sdk module (<= v3.68.0).
build_langhost_sdk() { # SDK_VERSION DIR
	local ver=$1 dir=$2 sdk
	sdk=$(mod_dir "github.com/pulumi/pulumi/sdk/v3@v$ver")
	[[ -d "$sdk/nodejs/cmd/pulumi-language-nodejs" ]] || {
		log "sdk/v3@v$ver has no nodejs/cmd/pulumi-language-nodejs"
		return 1
	}
	rm -rf "${dir:?}/bin" "${dir:?}/.stamp"
	copy_tree "$sdk" "$dir/src"
	# That host answers RunPlugin with "not supported", but current CLIs start Node policy packs
	# through it: swap in our RunPlugin (scripts/tools/patches/langhost_runplugin.go).
	local main=$dir/src/nodejs/cmd/pulumi-language-nodejs/main.go
	awk '/^func \(host \*nodeLanguageHost\) RunPlugin\(/ { skip = 1 } !skip { print } skip && /^}/ { skip = 0 }' \
		"$main" >"$main.new"
	mv "$main.new" "$main"
	# Checked with an if: a bare `! grep` never stopped the build (errexit skips a negated command), and a
	# RunPlugin left in place failed only later, in go build, as a method declared twice.
	if grep -q 'nodeLanguageHost) RunPlugin' "$main"; then
		log "sdk/v3@v$ver: its RunPlugin is still in $main after the cut"
		return 1
	fi
	cp "$LANGHOST_PATCH" "$dir/src/nodejs/cmd/pulumi-language-nodejs/"
	mkdir -p "$dir/bin"
	(cd "$dir/src" && go build -trimpath \
		-ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$ver" \
		-o "$dir/bin/pulumi-language-nodejs" ./nodejs/cmd/pulumi-language-nodejs)
	rm -rf "$dir/src"
	printf '%s\n' "$(langhost_sdk_key "$ver")" >"$dir/.stamp"
}

# ---------------------------------------------------------------------------------------------
# Providers
build_kubernetes() { # PROVIDER_PSEUDO SDK_VERSION PLUGIN_VERSION DIR
	local pver=$1 sver=$2 plugver=$3 dir=$4 prov sdk
	prov=$(mod_dir "github.com/pulumi/pulumi-kubernetes/provider/v4@$pver")
	sdk=$(mod_dir "github.com/pulumi/pulumi-kubernetes/sdk/v4@v$sver")
	rm -rf "${dir:?}/bin" "${dir:?}/.stamp"
	copy_tree "$prov" "$dir/src/provider" # its go.mod: replace .../sdk/v4 => ../sdk
	copy_tree "$sdk" "$dir/src/sdk"
	mkdir -p "$dir/bin"
	# writes the git-ignored schema-embed.json / terraform-mapping-embed.json
	(cd "$dir/src/provider" && VERSION=$plugver go generate ./cmd/pulumi-resource-kubernetes)
	(cd "$dir/src/provider" && go build -trimpath \
		-ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$plugver" \
		-o "$dir/bin/pulumi-resource-kubernetes" ./cmd/pulumi-resource-kubernetes)
	rm -rf "$dir/src"
	printf 'kubernetes provider@%s sdk@v%s version=%s\n' "$pver" "$sver" "$plugver" >"$dir/.stamp"
}

# probe_module MODULE@VERSION: is it served? (downloads it when it is) 0: served, 1: refused by the
# proxy, 2: no answer (logged: no network, a full disk...).
probe_module() {
	local out err
	out=$(go mod download -json "$1" 2>&1) && return 0
	! refused_by_proxy <<<"$out" || return 1
	err=$(grep -m1 '"Error"' <<<"$out" || printf '%s' "$out")
	log "$1: no answer from the Go proxy: ${err:0:300}"
	return 2
}

# find_provider NAME MODULE_ROOT MAJOR NPM_VERSION FALLBACK_PSEUDO: prints "<pseudo> <kind>" where
# kind is "release" (the commit of the npm version's sdk tag) or "fallback". Exit 1 when the proxy
# refuses both, 2 when one of the questions got no answer (nothing can be concluded then).
find_provider() {
	local name=$1 root=$2 major=$3 npmver=$4 fallback=$5 p r=0 rc=1
	p=$(release_pseudo "$root" "$major" "$npmver") || r=$?
	((r != 0)) || probe_module "$root/provider/v$major@$p" || r=$?
	if ((r == 0)); then
		echo "$p release"
		return 0
	fi
	((r == 1)) || rc=2
	((r != 1)) || log "$name: $root/provider/v$major at the commit of sdk/v$npmver is not served by the proxy${p:+ ($p)}"
	if [[ -n "$fallback" ]]; then
		r=0
		probe_module "$root/provider/v$major@$fallback" || r=$?
		if ((r == 0)); then
			echo "$fallback fallback"
			return 0
		fi
		((r == 1)) || rc=2
		((r != 1)) || log "$name: fallback $root/provider/v$major@$fallback is not served either"
	fi
	return $rc
}

# plugin_present NAME VERSION: a pulumi-resource-NAME on PATH outside .tools/bin, or installed
# in PULUMI_HOME at VERSION (pulumi plugin ls).
plugin_present() {
	local name=$1 ver=$2 p
	while IFS= read -r p; do
		[[ -n "$p" && "$(dirname "$(readlink -f "$p")")" != "$(readlink -f "$BIN_DIR")" && ! "$p" -ef "$BIN_DIR/$(basename "$p")" ]] && {
			log "$name: using pulumi-resource-$name from PATH ($p)"
			return 0
		}
	done < <(type -ap "pulumi-resource-$name" 2>/dev/null || true)
	if [[ -n "${PULUMI_CLI:-}" ]] && "$PULUMI_CLI" plugin ls --json 2>/dev/null |
		tr -d ' \n' | grep -qF "\"name\":\"$name\",\"kind\":\"resource\",\"version\":\"$ver\""; then
		log "$name: plugin $name $ver is installed in PULUMI_HOME (pulumi plugin ls)"
		return 0
	fi
	return 1
}

# ---------------------------------------------------------------------------------------------
T_TOTAL=$(now_ns)
hold_lock pulumi-tools
log "stack $STACK (target $TARGET): ${#STEPS[@]} steps: $(for s in "${STEPS[@]}"; do printf '%s, ' "${STEP_WHAT[$s]}"; done | sed 's/, $//')"
log "cache: $TOOLS_CACHE   bin: $BIN_DIR   go: $(go version | awk '{print $3}')"

# Take the offline environment (PULUMI_HOME, backend, ...) so plugin checks see what runs will see;
# not the stacks' passphrase, which building tools does not need (up.sh and down.sh check it).
# shellcheck source=../lib/pulumi-env.sh
PULUMI_ENV_TOOLS_ONLY=1 && source "$ROOT/scripts/lib/pulumi-env.sh"

RESULTS=$(mktemp -d)
trap 'rm -rf "$RESULTS"' EXIT

# The CLI: one already installed on PATH, or a cached build (decided here: plugin checks need it).
PULUMI_CLI=
SYSTEM_CLI=0
while IFS= read -r p; do
	[[ -n "$p" ]] || continue
	[[ "$(dirname "$(readlink -f "$p")")" == "$(readlink -f "$BIN_DIR")" || "$p" -ef "$BIN_DIR/pulumi" ]] && continue
	v=$("$p" version 2>/dev/null | head -n1 || true)
	if [[ "$v" =~ ^v?[0-9]+\.[0-9]+\.[0-9]+ ]] && version_ge "$v" "$PULUMI_CLI_MIN_VERSION"; then
		PULUMI_CLI=$p
		SYSTEM_CLI=1
		break
	fi
	log "ignoring $p ($v): older than $PULUMI_CLI_MIN_VERSION"
done < <(type -ap pulumi 2>/dev/null || true)
CLI_VERSION=
if ((SYSTEM_CLI == 0)); then
	for ver in "$PULUMI_VERSION" "$PULUMI_VERSION_FALLBACK"; do
		if is_built "$TOOLS_CACHE/pulumi-$ver" "pulumi v$ver" pulumi pulumi-resource-pulumi-nodejs; then
			CLI_VERSION=$ver
			PULUMI_CLI=$TOOLS_CACHE/pulumi-$ver/bin/pulumi
			break
		fi
		known_unavailable "pulumi-$ver" || break
	done
fi

job_cli() {
	if ((SYSTEM_CLI)); then
		# Don't let stale copies in .tools/bin shadow the installed CLI and its language hosts.
		rm -f "$BIN_DIR/pulumi" "$BIN_DIR/pulumi-language-nodejs" "$BIN_DIR/pulumi-resource-pulumi-nodejs"
		step_log cli "using the one installed: $PULUMI_CLI ($("$PULUMI_CLI" version))"
		echo "$PULUMI_CLI" >"$RESULTS/cli"
		return 0
	fi
	local ver dir
	for ver in "$PULUMI_VERSION" "$PULUMI_VERSION_FALLBACK"; do
		dir=$TOOLS_CACHE/pulumi-$ver
		if is_built "$dir" "pulumi v$ver" pulumi pulumi-resource-pulumi-nodejs; then
			step_log cli "v$ver: cached"
		elif known_unavailable "pulumi-$ver"; then
			step_log cli "v$ver: skipped ($(cat "$UNAVAILABLE_DIR/pulumi-$ver"))"
			continue
		else
			build_step cli "cli-$ver" "v$ver from github.com/pulumi/pulumi/pkg/v3" build_cli "$ver" "$dir"
			if ((STEP_RC != 0)); then
				if refused_by_proxy <"$STEP_LOG_DIR/cli-$ver.log"; then
					mark_unavailable "pulumi-$ver" "not served by the Go proxy (see $STEP_LOG_DIR/cli-$ver.log)"
				else
					not_recorded cli "v$ver" "$STEP_LOG_DIR/cli-$ver.log"
				fi
				continue
			fi
		fi
		link_bin "$dir/bin/pulumi"
		link_bin "$dir/bin/pulumi-resource-pulumi-nodejs"
		echo "$dir/bin/pulumi" >"$RESULTS/cli"
		return 0
	done
	step_log cli "ERROR: no pulumi CLI could be built ($PULUMI_VERSION, $PULUMI_VERSION_FALLBACK; see above; PULUMI_TOOLS_RETRY=1 tries versions recorded as not served again)"
	return 1
}

job_langhost() {
	local cli_dir lh_ver lh_dir="" mod_dir_lh sdk_dir_lh
	if ((SYSTEM_CLI)); then
		cli_dir=$(dirname "$(readlink -f "$PULUMI_CLI")")
		if [[ -x "$cli_dir/pulumi-language-nodejs" ]]; then
			step_log langhost "using $cli_dir/pulumi-language-nodejs"
			return 0
		fi
	fi
	lh_ver=${CLI_VERSION:-$PULUMI_VERSION}
	mod_dir_lh=$TOOLS_CACHE/pulumi-language-nodejs-$lh_ver
	sdk_dir_lh=$TOOLS_CACHE/pulumi-language-nodejs-$PULUMI_LANGUAGE_NODEJS_SDK_FALLBACK
	if [[ -f "$mod_dir_lh/.stamp" && -x "$mod_dir_lh/bin/pulumi-language-nodejs" && "${PULUMI_TOOLS_FORCE:-0}" != 1 ]]; then
		lh_dir=$mod_dir_lh
		step_log langhost "$lh_ver (own module): cached"
	elif ! known_unavailable "pulumi-language-nodejs-$lh_ver"; then
		build_step langhost "langhost-module-$lh_ver" "own module at the CLI v$lh_ver commit" build_langhost_module "$lh_ver" "$mod_dir_lh"
		if ((STEP_RC == 0)); then
			lh_dir=$mod_dir_lh
		elif refused_by_proxy <"$STEP_LOG_DIR/langhost-module-$lh_ver.log"; then
			mark_unavailable "pulumi-language-nodejs-$lh_ver" "$PULUMI_LH_MODULE at the v$lh_ver commit is not served"
			step_log langhost "$PULUMI_LH_MODULE is not served at the v$lh_ver commit; falling back to the host inside sdk/v3@v$PULUMI_LANGUAGE_NODEJS_SDK_FALLBACK"
		else
			not_recorded langhost "its own module at the v$lh_ver commit" "$STEP_LOG_DIR/langhost-module-$lh_ver.log"
			step_log langhost "falling back to the host inside sdk/v3@v$PULUMI_LANGUAGE_NODEJS_SDK_FALLBACK for this run"
		fi
	fi
	if [[ -z "$lh_dir" ]]; then
		if is_built "$sdk_dir_lh" "$(langhost_sdk_key "$PULUMI_LANGUAGE_NODEJS_SDK_FALLBACK")" pulumi-language-nodejs; then
			step_log langhost "sdk/v3@v$PULUMI_LANGUAGE_NODEJS_SDK_FALLBACK: cached"
		else
			build_step langhost "langhost-sdk-$PULUMI_LANGUAGE_NODEJS_SDK_FALLBACK" "from sdk/v3@v$PULUMI_LANGUAGE_NODEJS_SDK_FALLBACK" \
				build_langhost_sdk "$PULUMI_LANGUAGE_NODEJS_SDK_FALLBACK" "$sdk_dir_lh"
			((STEP_RC == 0)) || {
				step_log langhost "ERROR: no Node language host could be built"
				return 1
			}
		fi
		lh_dir=$sdk_dir_lh
	fi
	link_bin "$lh_dir/bin/pulumi-language-nodejs"
}

# job_provider NAME MODULE_ROOT MAJOR NPM_VERSION FALLBACK_PSEUDO: an installed plugin, a cached
# upstream build, an upstream build; for random and docker, whose provider modules the proxy does
# not serve, this repo's own plugin (tools/providers) stands in (same plugin name and type tokens).
# Leaves failed-NAME in RESULTS when there is none; returns 0 (so that it is never called in a
# conditional context).
job_provider() {
	local name=$1 root=$2 major=$3 npmver=$4 fallback=$5 found pver kind dir sver plugver frc=0
	if plugin_present "$name" "$npmver"; then
		rm -f "$BIN_DIR/pulumi-resource-$name"
		step_log "$name" "installed (see above)"
		return 0
	fi
	for dir in "$TOOLS_CACHE/pulumi-resource-$name-"*; do
		if [[ -f "$dir/.stamp" && -x "$dir/bin/pulumi-resource-$name" && "$(cat "$dir/.pin" 2>/dev/null)" == "$npmver $fallback" && "${PULUMI_TOOLS_FORCE:-0}" != 1 ]]; then
			step_log "$name" "cached ($(cat "$dir/.stamp"))"
			link_bin "$dir/bin/pulumi-resource-$name"
			return 0
		fi
	done
	known_unavailable "$name-$npmver" || found=$(find_provider "$name" "$root" "$major" "$npmver" "$fallback") || frc=$?
	if known_unavailable "$name-$npmver"; then
		:
	elif ((frc == 1)); then
		mark_unavailable "$name-$npmver" "no provider/v$major module of $root is served by the Go proxy (npm $npmver)"
	elif ((frc != 0)); then
		step_log "$name" "the Go proxy did not answer (see above): not recorded as unavailable, the next run asks again"
	else
		pver=${found% *}
		kind=${found#* }
		case $name in
		kubernetes)
			if [[ $kind == release ]]; then
				sver=$npmver plugver=$npmver
			else
				sver=$KUBERNETES_SDK_VERSION plugver=$KUBERNETES_PLUGIN_VERSION
			fi
			dir=$TOOLS_CACHE/pulumi-resource-kubernetes-$plugver
			build_step kubernetes "kubernetes-$plugver" "$plugver ($pver)" build_kubernetes "$pver" "$sver" "$plugver" "$dir"
			if ((STEP_RC != 0)); then
				: >"$RESULTS/failed-$name"
				return 0
			fi
			printf '%s %s\n' "$npmver" "$fallback" >"$dir/.pin"
			link_bin "$dir/bin/pulumi-resource-$name"
			return 0
			;;
		*)
			# random (terraform-bridge + recreated shim module) and docker (kreuzwerker upstream at the
			# pinned commit + shim package) need the extra steps of docs in shared notes; their
			# provider modules are not served here, so that path has never been exercised.
			step_log "$name" "provider module $pver is served, but building it needs the shim/upstream steps this script does not implement yet"
			;;
		esac
	fi
	case $name in
	random | docker)
		if bash "$SCRIPT_DIR/build-local-providers.sh" --check "$name" 2>/dev/null; then
			step_log "$name" "this repo's plugin (tools/providers/$name): up to date"
		else
			build_step "$name" "local-$name" "this repo's plugin (tools/providers/$name; the upstream module is not served)" \
				bash "$SCRIPT_DIR/build-local-providers.sh" "$name"
			((STEP_RC == 0)) || : >"$RESULTS/failed-$name"
		fi
		return 0
		;;
	esac
	step_log "$name" "NOT BUILT: $(cat "$UNAVAILABLE_DIR/$name-$npmver" 2>/dev/null || echo 'see above') (PULUMI_TOOLS_RETRY=1 to probe again)"
	: >"$RESULTS/failed-$name"
}

# job_providers NAME...: the named provider plugins one after the other (random and docker compile
# the same packages: the second reuses the first's Go cache); a failed one does not stop the next.
job_providers() {
	local name
	for name in "$@"; do
		case $name in
		random) job_provider random github.com/pulumi/pulumi-random 4 "$RANDOM_NPM_VERSION" "$RANDOM_PROVIDER_PSEUDO" ;;
		docker) job_provider docker github.com/pulumi/pulumi-docker 5 "$DOCKER_NPM_VERSION" "$DOCKER_PROVIDER_PSEUDO" ;;
		kubernetes) job_provider kubernetes github.com/pulumi/pulumi-kubernetes 4 "$KUBERNETES_NPM_VERSION" "$KUBERNETES_PROVIDER_PSEUDO" ;;
		esac
	done
}

# Independent builds in parallel, one job each: the CLI, the language host, the plugins. A job runs
# in a subshell with errexit (never in a conditional context, where bash would ignore errexit in
# everything it calls) and leaves ok-NAME when it succeeded.
# Each job is a process group of its own (set -m): Ctrl-C, SIGTERM or a closed terminal stops the
# jobs with every go build they started, said on stderr. Before, they went on after the run had
# ended (a script's background jobs ignore Ctrl-C) holding the tools lock, and the next run waited
# for them. A failed step needs none of this: every job has ended when the run looks at the results.
JOB_PIDS=()
stop_jobs() {
	local pid alive=()
	for pid in "${JOB_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
	((${#alive[@]})) || return 0
	log "interrupted: stopping the builds this run started (process groups ${alive[*]}); the next run builds what is missing"
	for pid in "${alive[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
}
trap 'stop_jobs; rm -rf "$RESULTS"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
start_job() { # NAME FUNC ARGS...
	local name=$1
	shift
	if [[ "${PULUMI_TOOLS_SERIAL:-0}" == 1 ]]; then
		set +e
		(
			set -e
			"$@"
			: >"$RESULTS/ok-$name"
		)
		set -e
	else
		set -m
		(
			set -e
			"$@"
			: >"$RESULTS/ok-$name"
		) </dev/null &
		JOB_PIDS+=($!)
		set +m
	fi
}
start_job cli job_cli
start_job langhost job_langhost
start_job plugins job_providers random docker
((NEED_KUBERNETES == 0)) || start_job kubernetes job_providers kubernetes
for pid in "${JOB_PIDS[@]}"; do wait "$pid" || true; done
JOB_PIDS=()

# ---------------------------------------------------------------------------------------------
for f in cli langhost; do
	[[ -f "$RESULTS/ok-$f" ]] || {
		log "ERROR: the ${STEP_WHAT[$f]} could not be built (see above)"
		exit 1
	}
done
FAILURES=()
for name in random docker kubernetes; do
	[[ ! -f "$RESULTS/failed-$name" ]] || FAILURES+=("$name")
done
PULUMI_CLI=$(cat "$RESULTS/cli")
log "pulumi CLI: $PULUMI_CLI ($("$PULUMI_CLI" version))"
for b in "$BIN_DIR"/*; do [[ -e "$b" ]] && log "  .tools/bin/$(basename "$b")"; done
log "total $(human "$(secs_since "$T_TOTAL")") for stack $STACK"
if ((${#FAILURES[@]})); then
	log "NOT BUILT: ${FAILURES[*]} (see messages above; programs using these providers cannot run here)"
	[[ "${PULUMI_TOOLS_STRICT:-0}" != 1 ]] || exit 2
fi
