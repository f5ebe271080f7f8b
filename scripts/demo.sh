#!/usr/bin/env bash
# Runs the shop demo: the five contexts of the seed, order creation and payment in the
# transactional and the saga mode, every failure scenario, and the final state of every
# context. Arguments go to `shop demo` (for example: --mode saga).
# On a fresh Debian 12 machine it first installs what is missing.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$choreo_root"

ensure_packages "${core_packages[@]}"
configure_and_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++ >/dev/null
exec build/examples/shop/shop demo "$@"
