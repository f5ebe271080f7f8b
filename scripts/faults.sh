#!/usr/bin/env bash
# Runs the tests that inject faults (crashes, a full disk, Redis or the Kafka broker killed,
# malformed input, a failure at every step, contention) and writes docs/faults.md from what they recorded.
# On a fresh Debian 12 machine it first installs what is missing.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$choreo_root"

ensure_packages "${core_packages[@]}" python3
kafka_broker=$(ensure_kafka_broker) # the Kafka tests' faults are rows of the matrix too
configure_and_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++ -DCHOREO_WERROR=ON \
  -DCHOREO_KAFKA_BROKER_LIBS="$kafka_broker"
log=build/fault-log.tsv
rm -f "$log"
CHOREO_FAULT_LOG="$choreo_root/$log" ctest --test-dir build -j 2 --output-on-failure \
  -R "^(saga|durable|redis|kafka|shop|shop_processes|shop_processes_scenarios|shop_processes_kafka|shop_http)$"
python3 scripts/fault_matrix.py "$log" docs/faults.md
