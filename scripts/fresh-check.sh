#!/usr/bin/env bash
# The README's two commands on a fresh Debian 12: a minbase chroot (debootstrap) with only
# git added, a clean clone of this checkout's HEAD in it, then scripts/demo.sh and
# scripts/test.sh run there as a new user would run them. What CI's machine happens to
# have installed is invisible in there, so an install step the scripts lack fails here.
# Run it before resolving any change to install steps or packaging. It needs root (chroot,
# mounts) and the network to Debian's archive, PyPI and Maven Central; it takes about as long
# as a first scripts/test.sh (some 40 minutes on two cores) plus a few for the chroot.
#
# Usage: scripts/fresh-check.sh [demo|test|both]   (default: both)
#        CHOREO_FRESH_KEEP=1 keeps the chroot (its path is printed) for a look after a failure.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$choreo_root"

what=${1:-both}
case "$what" in demo | test | both) ;; *) fail_step "usage: scripts/fresh-check.sh [demo|test|both], not '$what'" ;; esac
[ "$(id -u)" -eq 0 ] || fail_step "fresh-check needs root (debootstrap, chroot and mounts)"
[ -z "$(git status --porcelain --untracked-files=no)" ] ||
  echo "==> note: uncommitted changes are not checked; the chroot gets a clean clone of HEAD ($(git rev-parse --short HEAD))"

echo "==> installing debootstrap if missing"
ensure_packages debootstrap
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
mirror=${mirror:-http://deb.debian.org/debian}

root=$(mktemp -d /var/tmp/choreo-fresh.XXXXXX)
# mktemp makes the directory 0700; as the chroot's / it would let no user but root run
# anything (PostgreSQL, which refuses root, runs as its own user in the tests).
chmod 755 "$root"
mounted=()
cleanup() {
  local status=$?
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
  if [ "${CHOREO_FRESH_KEEP:-0}" = 1 ]; then
    echo "==> the chroot is kept in $root"
  else
    rm -rf --one-file-system "$root"
  fi
  exit "$status"
}
trap cleanup EXIT

echo "==> debootstrap: Debian 12 (bookworm), minbase, plus git, from $mirror into $root"
debootstrap --variant=minbase --include=git,ca-certificates bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
  fail_step "debootstrap failed (its log: $root.debootstrap.log)"
rm -f "$root.debootstrap.log"

for fs in proc sys dev dev/pts; do
  mkdir -p "$root/$fs"
  case $fs in
    proc) mount -t proc proc "$root/proc" ;;
    sys) mount -t sysfs sysfs "$root/sys" ;;
    *) mount --bind "/$fs" "$root/$fs" ;;
  esac
  mounted+=("$root/$fs")
done
mkdir -p "$root/dev/shm" "$root/tmp"
chmod 1777 "$root/tmp"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The host's own CA certificates, where its network reaches the registries through a proxy
# with one (this workplace's does): network configuration, like resolv.conf, not an install
# step of the project. Trusted before anything is installed, so Java's keystore gets them too.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null || fail_step "update-ca-certificates failed in the chroot"
fi

echo "==> a clean clone of HEAD ($(git rev-parse --short HEAD)) into the chroot's /work/choreo"
git clone -q --no-hardlinks "$choreo_root" "$root/work/choreo"
git -C "$root/work/choreo" checkout -q "$(git rev-parse HEAD)"

run_in_chroot() {
  echo "==> in the fresh chroot: $*"
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" CI="${CI:-}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    bash -c "cd /work/choreo && $*"
}
if [ "$what" = demo ] || [ "$what" = both ]; then
  run_in_chroot scripts/demo.sh --mode saga || fail_step "scripts/demo.sh failed on a fresh Debian 12"
fi
if [ "$what" = test ] || [ "$what" = both ]; then
  run_in_chroot scripts/test.sh || fail_step "scripts/test.sh failed on a fresh Debian 12"
fi
echo "==> fresh-check passed: the README's commands ($what) work on a fresh Debian 12"
