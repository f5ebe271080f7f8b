#!/usr/bin/env bash
# Builds choreo with GCC and with Clang (warnings are errors) and runs every test.
# On a fresh Debian 12 machine it first installs what is missing.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$choreo_root"

ensure_packages "${core_packages[@]}" clang-14

echo "==> GCC build"
configure_and_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++ -DCHOREO_WERROR=ON
ctest --test-dir build -j 2 --output-on-failure

echo "==> Clang build"
configure_and_build build-clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 -DCHOREO_WERROR=ON
ctest --test-dir build-clang -j 2 --output-on-failure
