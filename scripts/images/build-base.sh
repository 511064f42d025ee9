#!/usr/bin/env bash
# Build the base image localhost/ai-trading/debian:bookworm from Debian packages only:
# debootstrap --variant=minbase bookworm + docker import.
# The rootfs tarball is cached in ${TRADING_CACHE_DIR:-$HOME/.cache/ai-trading}/images/
# so a second run only re-imports; the whole step is skipped if the image exists.
# Env: BASE_IMAGE (default localhost/ai-trading/debian:bookworm), DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR,
#      FORCE_BASE=1 to rebuild the rootfs.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib/local-images.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/local-images.sh"
BASE_IMAGE="${BASE_IMAGE:-$(local_image debian:bookworm)}"
SUITE=bookworm
# shellcheck source=../lib/cache-dir.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/cache-dir.sh" || exit 1 # TRADING_CACHE_DIR, or stops naming what to set
CACHE_DIR="$TRADING_CACHE_DIR/images"
# Bump ROOTFS_REV when the rootfs recipe below changes (invalidates the cached tarball).
ROOTFS_REV=2
TARBALL="$CACHE_DIR/debian-$SUITE-minbase-rootfs-r$ROOTFS_REV.tar"

log() { echo "[build-base] $*" >&2; }

"$HERE/../docker/ensure-dockerd.sh"

if [ "${FORCE_BASE:-0}" != 1 ] && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "$BASE_IMAGE already present, skipping"
  exit 0
fi
# One base build at a time on this machine (the rootfs cache is shared by every clone): two cold
# runs at once (`npm run up` beside `npm run e2e`, another clone) each ran debootstrap and wrote the
# same $TARBALL.tmp, and the cache kept whatever mix of the two tars was renamed last. The second
# run waits, then finds the image imported.
# shellcheck source=../lib/locks.sh
source "$HERE/../lib/locks.sh"
hold_lock images-base
if [ "${FORCE_BASE:-0}" != 1 ] && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "$BASE_IMAGE imported by the run we waited for, skipping"
  exit 0
fi

# The Debian mirror the host's apt uses (deb822 .sources first, then one-line format).
host_uri_for() {  # $1 = suite (bookworm | bookworm-security)
  local suite="$1" f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v want="$suite" '
      BEGIN { RS=""; FS="\n" }
      {
        uris=""; suites=""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/)   { sub(/^URIs:[ \t]*/, "", $i); uris=$i }
          if ($i ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", $i); suites=" " $i " " }
        }
        if (uris != "" && index(suites, " " want " ") > 0) { split(uris, u, " "); print u[1]; exit }
      }' "$f"
  done | head -n1 | grep . && return 0
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
    | awk -v want="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                                           if ($(i+1) == want) { print $i; exit } }' | head -n1 | grep .
}

MIRROR="${DEBIAN_MIRROR:-$(host_uri_for "$SUITE" || echo http://deb.debian.org/debian)}"
SEC_MIRROR="${DEBIAN_SECURITY_MIRROR:-$(host_uri_for "$SUITE-security" || echo http://deb.debian.org/debian-security)}"
MIRROR="${MIRROR%/}"; SEC_MIRROR="${SEC_MIRROR%/}"

if [ "${FORCE_BASE:-0}" = 1 ] || [ ! -s "$TARBALL" ]; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    apt_get update -qq
    apt_get install -y -qq --no-install-recommends debootstrap
  fi
  mkdir -p "$CACHE_DIR"
  cleanup() { # DIR: a rootfs being built, with what debootstrap mounted in it
    for m in proc sys dev/pts dev; do umount -l "$1/$m" 2>/dev/null || true; done
    rm -rf --one-file-system "$1" 2>/dev/null || true
  }
  # Holding the lock: rootfs folders and partial tarballs left by killed runs are ours to remove
  # (a few hundred MB each).
  for d in "$CACHE_DIR"/rootfs.*; do [ ! -d "$d" ] || { log "removing $d (left by an interrupted run)"; cleanup "$d"; }; done
  rm -f "$TARBALL.tmp"
  ROOT="$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")"
  trap 'cleanup "$ROOT"' EXIT
  log "debootstrap --variant=minbase $SUITE from $MIRROR (a few minutes)"
  start=$SECONDS
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$ROOT" "$MIRROR" \
    >"$CACHE_DIR/debootstrap.log" 2>&1 || { tail -n 30 "$CACHE_DIR/debootstrap.log" >&2; exit 1; }
  log "debootstrap done in $((SECONDS - start))s"

  # apt sources inside the image: the same mirror as the host, plus updates and security.
  rm -f "$ROOT/etc/apt/sources.list"
  cat >"$ROOT/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SEC_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  # Container-friendly apt: no recommends, no caches kept in layers.
  cat >"$ROOT/etc/apt/apt.conf.d/90container" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Acquire::Retries "3";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT
  # Slim: no docs, man pages, info or translations (copyright files kept), as Debian's -slim images.
  cat >"$ROOT/etc/dpkg/dpkg.cfg.d/90-container-slim" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
DPKG
  find "$ROOT/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$ROOT/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$ROOT"/usr/share/lintian/*
  find "$ROOT/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  # Never start services from maintainer scripts during image builds.
  printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
  chmod 755 "$ROOT/usr/sbin/policy-rc.d"
  # Docker manages these at run time.
  : >"$ROOT/etc/resolv.conf"
  : >"$ROOT/etc/hostname"
  rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb \
         "$ROOT"/var/log/*.log "$ROOT"/tmp/* "$ROOT"/var/tmp/*
  for m in proc sys dev/pts dev; do umount -l "$ROOT/$m" 2>/dev/null || true; done
  tar --numeric-owner --xattrs -C "$ROOT" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
  log "rootfs cached: $TARBALL ($(du -h "$TARBALL" | cut -f1))"
fi

start=$SECONDS
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["bash"]' \
  --change "LABEL org.opencontainers.image.source=ai-trading debian.mirror=$MIRROR" \
  "$TARBALL" "$BASE_IMAGE" >/dev/null
log "imported $BASE_IMAGE in $((SECONDS - start))s"
