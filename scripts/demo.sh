#!/usr/bin/env bash
# Runs the demo: an order placed in a unit of work, printed as a timeline.
# On a fresh Debian 12 machine it first installs what is missing.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$choreo_root"

ensure_packages "${core_packages[@]}"
configure_and_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++ >/dev/null
exec build/examples/core/choreo_core_demo "$@"
