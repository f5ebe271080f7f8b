#!/usr/bin/env bash
# Exercises the Conan recipe: `conan create` of the checkout, then its test_package, which
# builds and runs the package consumer against the Conan package.
# Conan's central remote is out of reach here, so a profile maps Boost, {fmt} and SQLite
# onto Debian's packages with [platform_requires] (their versions read from dpkg), and the
# remotes are disabled: nothing is fetched, and what would be is reported as an error.
# Usage: run.sh CONAN WORK_DIR SOURCE_DIR
set -euo pipefail
conan=$1 work=$2 source=$3
export CONAN_HOME=$work/conan-home
rm -rf "$work" && mkdir -p "$work"

debian_version() { dpkg-query -W -f='${Version}' "$1" | sed -E 's/^[0-9]+://; s/[-+~].*$//'; }
boost=$(debian_version libboost1.81-dev)
fmt=$(debian_version libfmt-dev)
sqlite=$(debian_version libsqlite3-dev)
hiredis=$(debian_version libhiredis-dev)

"$conan" profile detect >/dev/null
"$conan" remote disable '*' >/dev/null
cat > "$work/debian12" <<PROFILE
include(default)
[settings]
compiler.cppstd=20
build_type=Release
[platform_requires]
boost/$boost
fmt/$fmt
sqlite3/$sqlite
hiredis/$hiredis
[conf]
# Ninja, which the scripts install, rather than Conan's default of Makefiles (a fresh
# Debian has no make).
tools.cmake.cmaketoolchain:generator=Ninja
PROFILE
echo "profile: boost/$boost fmt/$fmt sqlite3/$sqlite hiredis/$hiredis from Debian's packages"
# The default package (every layer), then one with the core alone: the test_package's
# consumer says which targets it linked.
expect() {
  local log=$1 line=$2
  if ! grep -qx "$line" "$log"; then
    echo "conan create did not produce '$line'; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
  echo "ok: $line"
}
version=$(sed -nE 's/^#define CHOREO_VERSION_(MAJOR|MINOR|PATCH) ([0-9]+)$/\2/p' "$source/include/choreo/version.hpp" | paste -sd.)
"$conan" create "$source" --profile:all "$work/debian12" --build=missing >"$work/default.log" 2>&1 || { cat "$work/default.log" >&2; exit 1; }
expect "$work/default.log" "consumer ok with choreo $version and choreo::sqlite and choreo::redis"
"$conan" create "$source" --profile:all "$work/debian12" --build=missing -o "choreo/*:durable=False" -o "choreo/*:redis=False" \
  >"$work/core-only.log" 2>&1 || { cat "$work/core-only.log" >&2; exit 1; }
expect "$work/core-only.log" "consumer ok with choreo $version"
