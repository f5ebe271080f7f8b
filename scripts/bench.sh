#!/usr/bin/env bash
# Builds choreo in Release, runs every benchmark (median of 3 repetitions), prints the
# ratios against the peers measured in the same run, and writes build/bench/results.json,
# build/bench/summary.md and build/bench/chart.png.
# On a fresh Debian 12 machine it first installs what is missing.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$choreo_root"

ensure_packages "${core_packages[@]}" gnuplot-nox python3 libpq-dev postgresql-15
kafka_broker=$(ensure_kafka_broker) # the sagas over Kafka run against a broker of their own
configure_and_build build-release -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ -DCHOREO_BUILD_BENCHMARKS=ON \
  -DCHOREO_KAFKA_BROKER_LIBS="$kafka_broker" >/dev/null
mkdir -p build/bench
build-release/benchmarks/choreo_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_out=build/bench/results.json --benchmark_out_format=json "$@"
python3 benchmarks/report.py build/bench/results.json build/bench
