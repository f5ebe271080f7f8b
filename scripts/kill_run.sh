#!/usr/bin/env bash
# The kill-and-restart process test at length: the six-process shop over Redis under
# `shop load` while its context processes are SIGKILLed at random moments and restarted at
# once, KILLS times (default 120; the test suite runs it with 12). Passes when every order
# ended, no command ran twice (orders in the database = create_order answers), no payment
# was charged twice (the card gateway's books = the payments), and every invariant holds.
#
#   scripts/kill_run.sh [KILLS]
#
# On a fresh Debian 12 machine it first installs what is missing.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$choreo_root"

case ${1:-} in -h | --help) sed -n '2,9p' "$0"; exit 0 ;; esac
kills=${1:-120}
[[ $kills =~ ^[1-9][0-9]*$ ]] || fail_step "KILLS is a positive whole number, not '$kills'"

ensure_packages "${core_packages[@]}"
echo "==> building the shop and its process tests"
cmake -S "$choreo_root" -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" -DCMAKE_CXX_COMPILER=g++ -DCHOREO_WERROR=ON >/dev/null
cmake --build build -j "$(nproc)" --target shop choreo_shop_process_tests
echo "==> $kills kills during one load (each process killed about $((kills / 6)) times)"
CHOREO_SHOP_KILLS=$kills build/tests/choreo_shop_process_tests \
  --test-case='*contexts killed (SIGKILL) at random moments*' --success=false ||
  fail_step "the kill-and-restart run failed (its output above says what broke)"
echo "==> passed: $kills kills, no duplicate order or charge, every invariant held"
