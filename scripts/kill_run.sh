#!/usr/bin/env bash
# The kill-and-restart process test at length: the six-process shop under `shop load`, its
# events over Redis Streams and then over Kafka (a broker the test starts), while its
# processes are SIGKILLed at random moments and restarted at once, KILLS times in each run
# (default 120; the test suite runs 12). Passes when every order ended, no command ran twice
# (orders in the database = create_order answers), no payment was charged twice (the card
# gateway's books = the payments), and every invariant holds. About 9 minutes for 120.
#
#   scripts/kill_run.sh [KILLS]
#
# On a fresh Debian 12 machine it first installs what is missing.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$choreo_root"

case ${1:-} in -h | --help) sed -n '2,10p' "$0"; exit 0 ;; esac
kills=${1:-120}
[[ $kills =~ ^[1-9][0-9]*$ ]] || fail_step "KILLS is a positive whole number, not '$kills'"

ensure_packages "${core_packages[@]}"
kafka_broker=$(ensure_kafka_broker)
echo "==> building the shop and its process tests"
cmake -S "$choreo_root" -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" -DCMAKE_CXX_COMPILER=g++ -DCHOREO_WERROR=ON \
  -DCHOREO_KAFKA_BROKER_LIBS="$kafka_broker" >/dev/null
cmake --build build -j "$(nproc)" --target shop choreo_shop_process_tests
echo "==> $kills kills during one load, over Redis and over Kafka (each process killed about $((kills / 6)) times)"
CHOREO_SHOP_KILLS=$kills build/tests/choreo_shop_process_tests \
  --test-case='*contexts killed (SIGKILL) at random moments*' --success=false ||
  fail_step "the kill-and-restart run failed (its output above says what broke)"
echo "==> passed: $kills kills in each run, no duplicate order or charge, every invariant held"
