#!/usr/bin/env bash
# Long fuzzing runs of everything that decodes untrusted input (Redis stream entries and
# payloads, replies from the Redis port, connection URLs, outbox rows read back from
# SQLite), with libFuzzer, ASan and UBSan.
# Usage: scripts/fuzz.sh [SECONDS per target, default 600]. New inputs go to
# build-fuzz/tests/fuzz/corpus/NAME; a crash leaves crash-* in build-fuzz/tests/fuzz: add it
# to tests/fuzz/corpus/NAME (scripts/test.sh then runs it every time) and fix the cause.
# On a fresh Debian 12 machine it first installs what is missing.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$choreo_root"

seconds=${1:-600}
ensure_packages "${core_packages[@]}" clang-14 libclang-rt-14-dev
cmake -S "$choreo_root" -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCHOREO_BUILD_TESTS=OFF -DCHOREO_BUILD_EXAMPLES=OFF -DCHOREO_BUILD_BENCHMARKS=OFF -DCHOREO_BUILD_FUZZERS=ON \
  -DCHOREO_FUZZ_SECONDS="$seconds" >/dev/null
cmake --build build-fuzz -j "$(nproc)"
ctest --test-dir build-fuzz -j "$(nproc)" --output-on-failure
