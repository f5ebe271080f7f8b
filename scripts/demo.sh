#!/usr/bin/env bash
# Runs the shop demo: the five contexts of the seed, order creation and payment in the
# transactional and the saga mode, every failure scenario, and the final state of every
# context. Arguments go to `shop demo` (for example: --mode saga, --verbose).
# On a fresh Debian 12 machine it first installs what is missing, then builds the shop
# program alone (not the tests or benchmarks), saying what it does at each step.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$choreo_root"

echo "==> checking the Debian packages the shop needs"
ensure_packages "${core_packages[@]}"
echo "==> configuring (build/, GCC, optimized)"
cmake -S "$choreo_root" -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++ >/dev/null ||
  fail_step "configuring with CMake failed (run it again without >/dev/null in scripts/demo.sh to see why)"
echo "==> building the shop program only (a few minutes on a fresh machine; Ninja shows each file)"
cmake --build build -j "$(nproc)" --target shop || fail_step "building the shop failed"
echo "==> running: build/examples/shop/shop demo $*"
echo
exec build/examples/shop/shop demo "$@"
