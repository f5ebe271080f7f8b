#!/usr/bin/env bash
# The shop as six processes under `shop load`, twice in one run: the events between the
# processes over Redis Streams, then over Kafka (the saga state and the commands in Redis
# both times). Starts a redis-server and a single-node Kafka broker of its own on free
# loopback ports (Release build), prints each load's progress and audit, then both
# throughputs side by side with their ratio.
#   scripts/shop_load.sh [ORDERS] [CONCURRENCY] [PRODUCTS]
# On a fresh Debian 12 machine it first installs what is missing.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$choreo_root"

orders=${1:-1000}
concurrency=${2:-16}
products=${3:-200}
ensure_packages "${core_packages[@]}" python3
kafka_libs=$(ensure_kafka_broker)
configure_and_build build-release -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ -DCHOREO_BUILD_TESTS=OFF \
  -DCHOREO_BUILD_BENCHMARKS=OFF >/dev/null
shop=build-release/examples/shop/shop

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
wait_for_port "$redis_port" 30
redis_url=redis://127.0.0.1:$redis_port
echo "==> Redis on $redis_url; starting a Kafka broker"
read -r broker_pid kafka_port < <(start_kafka_broker "$kafka_libs" "$work/kafka")
pids+=("$broker_pid")
kafka_url=kafka://127.0.0.1:$kafka_port

# run_load NAME [--kafka URL]: six serving processes, `shop load` through them, then SIGTERM.
run_load() {
  local name=$1
  shift
  local dir=$work/$name serving=()
  mkdir -p "$dir"
  for context in order product coupon point payment data_platform; do
    "$shop" serve --context "$context" --redis "$redis_url" --dir "$dir" --prefix "$name:" "$@" >"$dir/$context.log" 2>&1 &
    serving+=($!)
  done
  echo "==> $orders orders, $concurrency at a time, $products products, events over $name"
  local status=0
  "$shop" load --redis "$redis_url" --dir "$dir" --prefix "$name:" --orders "$orders" --concurrency "$concurrency" \
    --products "$products" --users 100 --timeout 600 | tee "$work/$name.out" || status=$?
  kill -TERM "${serving[@]}"
  wait "${serving[@]}" || true
  if [ "$status" -ne 0 ]; then
    for context in order product coupon point payment data_platform; do tail -5 "$dir/$context.log"; done
    return "$status"
  fi
}

run_load redis
run_load kafka --kafka "$kafka_url"

# "throughput: 312.0 orders/s and 516.4 sagas/s over 9.6 s (...)"
figure() { sed -n "s/^throughput: \([0-9.]*\) orders\/s and \([0-9.]*\) sagas\/s.*/\\$2/p" "$work/$1.out"; }
echo
echo "| events between the processes | orders/s | sagas/s |"
echo "|---|---:|---:|"
echo "| Redis Streams | $(figure redis 1) | $(figure redis 2) |"
echo "| Kafka | $(figure kafka 1) | $(figure kafka 2) |"
python3 -c "print(f'Kafka / Redis Streams, sagas per second: {$(figure kafka 2) / $(figure redis 2):.2f}x')"
