#!/usr/bin/env bash
# Builds choreo with GCC and with Clang (warnings are errors) and runs every test, then
# runs the test binaries again under ThreadSanitizer and Address+UB sanitizers, then each
# libFuzzer target briefly.
# On a fresh Debian 12 machine it first installs what is missing.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$choreo_root"

# Each stage says how long the one before it took, so the suite's time stays in view (CI
# allows 90 minutes).
stage_started=$SECONDS
stage_running=false
stage_took() { $stage_running && echo "    ($((SECONDS - stage_started)) s; $((SECONDS / 60)) min in all)"; }
stage() {
  stage_took || true
  stage_running=true
  stage_started=$SECONDS
  echo "==> $1"
}
trap "stage_took || true" EXIT

stage "Installing what is missing (Debian packages, PostgreSQL 15, conan, the Kafka broker's jars)"
ensure_packages "${core_packages[@]}" clang-14 libclang-rt-14-dev clang-format-14 doxygen libpq-dev postgresql-15

conan=$(ensure_conan)
kafka_broker=$(ensure_kafka_broker)

# Full debug information is 40% of a translation unit's compile time here and no test reads
# it; line tables (-g1) are enough for backtraces and sanitizer reports.
line_tables="-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"

stage "Formatting (.clang-format)"
scripts/format.sh --check || fail_step "C++ not formatted by .clang-format: run scripts/format.sh"

stage "GCC build"
configure_and_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo "$line_tables" -DCMAKE_CXX_COMPILER=g++ -DCHOREO_WERROR=ON \
  -DCHOREO_CONAN="$conan" -DCHOREO_KAFKA_BROKER_LIBS="$kafka_broker"
# The tests that inject faults record them; a fault that broke an invariant fails the run.
rm -f build/fault-log.tsv
stage "GCC tests"
CHOREO_FAULT_LOG="$choreo_root/build/fault-log.tsv" ctest --test-dir build -j 2 --output-on-failure
python3 scripts/fault_matrix.py build/fault-log.tsv build/faults.md

stage "Clang build (Debug: unoptimized, Boost's own assertions on)"
# A second compiler's warnings do not depend on optimization, and -O0 compiles three times
# faster than -O2; the tests then run an unoptimized build with BOOST_ASSERT active, which the
# GCC build does not.
# The six-process shop over Kafka runs on the GCC build only: the same shop program and tests
# (Clang builds the shop with Kafka), and ten minutes of CI saved.
# Each public header compiled alone is checked in the GCC build: which headers a header
# includes does not change with the compiler, and here it was a fifth of the build. The
# benchmarks are built (warnings as errors) and run by the GCC build and scripts/bench.sh;
# no test here runs them, and unoptimized they would measure nothing.
configure_and_build build-clang -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O0 -g1" \
  -DCMAKE_CXX_COMPILER=clang++-14 -DCHOREO_WERROR=ON -DCHOREO_CHECK_HEADERS_ALONE=OFF -DCHOREO_BUILD_BENCHMARKS=OFF \
  -DCHOREO_KAFKA_BROKER_LIBS="$kafka_broker" -DCHOREO_TEST_SHOP_OVER_KAFKA=OFF
stage "Clang tests"
# The packaging tests (find_package, add_subdirectory, FetchContent, Conan) check CMake's side
# of the package and ran in the GCC stage; here they would build five consumers again. The
# Kafka library tests ran there too (75 s in this stage, the longest of it); Clang still
# compiles the Kafka layer, so its warnings are checked.
ctest --test-dir build-clang -j 2 --output-on-failure -E "^(package_.*|kafka)$"

# Sanitizers cover every test binary and the shop program the process tests run (the
# benchmarks add nothing there; the packaging and documentation checks build nothing new).
# A serving process that a sanitizer stops, or that reports at exit, fails its test.
sanitized_targets=(choreo_core_tests choreo_saga_tests choreo_durable_tests choreo_redis_tests choreo_shop_tests
  choreo_shop_process_tests choreo_shop_http_tests shop)
sanitized_tests="^(core|saga|durable|redis|shop|shop_processes|shop_processes_scenarios|shop_http)$"
# The build type's flags come after CMAKE_CXX_FLAGS and would override an optimization level
# there, so the level is set in the build type's flags.
sanitized() {
  local dir=$1 compiler=$2 flags=$3 build_type_flags=$4
  cmake -S "$choreo_root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$compiler" \
    -DCMAKE_CXX_FLAGS="$flags" "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$build_type_flags" \
    -DCHOREO_BUILD_EXAMPLES=ON -DCHOREO_BUILD_BENCHMARKS=OFF >/dev/null
  cmake --build "$dir" -j "$(nproc)" --target "${sanitized_targets[@]}"
}

stage "ThreadSanitizer build"
# ThreadSanitizer slows unoptimized code most and -O0 saves it little compile time (28 s against
# 36 s for tests/saga/flow.cpp), so it builds at -O1.
sanitized build-tsan g++ "-fsanitize=thread" "-O1 -g1 -DNDEBUG"
stage "ThreadSanitizer tests"
TSAN_OPTIONS="halt_on_error=1" ctest --test-dir build-tsan -j 2 -R "$sanitized_tests" --output-on-failure

stage "AddressSanitizer + UndefinedBehaviorSanitizer build (Clang)"
# Unoptimized: the instrumented optimizer was this suite's longest build (887 s at -O1 here;
# tests/saga/flow.cpp compiles in 29 s at -O0 against 66 s at -O1), and at -O0 nothing the
# sanitizers check is optimized away. Assertions stay on, as in the Clang stage.
sanitized build-asan clang++-14 "-fsanitize=address,undefined -fno-sanitize-recover=all" "-O0 -g1"
stage "AddressSanitizer + UndefinedBehaviorSanitizer tests"
ASAN_OPTIONS="detect_leaks=1" ctest --test-dir build-asan -j 2 -R "$sanitized_tests" --output-on-failure

# Everything that decodes untrusted input, fuzzed for a short while from the seed corpus
# (tests/fuzz/corpus, where inputs that once crashed stay as regressions); scripts/fuzz.sh
# runs longer.
stage "libFuzzer"
cmake -S "$choreo_root" -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCHOREO_BUILD_TESTS=OFF -DCHOREO_BUILD_EXAMPLES=OFF -DCHOREO_BUILD_BENCHMARKS=OFF -DCHOREO_BUILD_FUZZERS=ON \
  -DCHOREO_FUZZ_SECONDS=20 >/dev/null
cmake --build build-fuzz -j "$(nproc)"
ctest --test-dir build-fuzz -j 2 --output-on-failure
