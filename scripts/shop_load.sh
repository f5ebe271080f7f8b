#!/usr/bin/env bash
# The shop as six processes under `shop load`: the events between the processes over Redis
# Streams, then over Kafka (the saga state and the commands in Redis both times). Starts a
# redis-server and a single-node Kafka broker of its own on free loopback ports (Release
# build), measures Redis's own one-client, one-command-at-a-time XADD rate on that server
# (redis-benchmark -c 1 -P 1) before and after the loads, prints each load's progress, its
# hops by stage and its audit, then every throughput side by side with its ratios.
#
#   scripts/shop_load.sh [--baseline REV] [--rounds N] [--only redis|kafka] [ORDERS] [CONCURRENCY] [PRODUCTS]
#
# --baseline REV builds revision REV side by side (a git worktree under build-tools/, its own
# Release build) and runs each load against REV's shop and this checkout's in turn, so a
# claim of "faster" is a ratio from one run. --rounds N (default 1; 3 with --baseline) runs
# each shop N times, alternating, and reports each one's median round: which shop runs first
# and the machine's drift then weigh on both alike. Over Kafka a first load of 3,000 orders,
# not counted, warms the fresh broker's JVM up. On a fresh Debian 12 machine it first
# installs what is missing.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$choreo_root"

baseline=""
only=""
rounds=""
positional=()
while [ $# -gt 0 ]; do
  case $1 in
    --baseline) baseline=${2:?--baseline needs a revision}; shift 2 ;;
    --only) only=${2:?--only needs redis or kafka}; shift 2 ;;
    --rounds) rounds=${2:?--rounds needs a number}; shift 2 ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    -*) fail_step "unknown option $1 (see scripts/shop_load.sh --help)" ;;
    *) positional+=("$1"); shift ;;
  esac
done
case $only in "" | redis | kafka) ;; *) fail_step "--only takes redis or kafka, not '$only'" ;; esac
orders=${positional[0]:-1000}
concurrency=${positional[1]:-16}
products=${positional[2]:-200}
[ -n "$rounds" ] || rounds=$([ -n "$baseline" ] && echo 3 || echo 1)
for n in "$orders" "$concurrency" "$products" "$rounds"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || fail_step "ORDERS, CONCURRENCY, PRODUCTS and --rounds are positive whole numbers, not '$n'"
done

ensure_packages "${core_packages[@]}" python3 git
transports=(redis kafka)
[ -n "$only" ] && transports=("$only")
kafka_libs=""
[[ " ${transports[*]} " == *" kafka "* ]] && kafka_libs=$(ensure_kafka_broker)

echo "==> building this checkout's shop (Release)"
configure_and_build build-release -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ -DCHOREO_BUILD_TESTS=OFF \
  -DCHOREO_BUILD_BENCHMARKS=OFF >/dev/null
shops=(current)
declare -A shop_of=([current]=build-release/examples/shop/shop)
if [ -n "$baseline" ]; then
  rev=$(git rev-parse --verify --quiet "$baseline^{commit}") || fail_step "--baseline: no revision '$baseline' in this repository"
  tree=build-tools/baseline-${rev:0:12}
  if [ ! -d "$tree" ]; then
    git worktree add --detach "$tree" "$rev" >/dev/null || fail_step "git worktree add $tree $rev failed"
  fi
  echo "==> building the baseline's shop ($(git log -1 --format='%h %s' "$rev"), in $tree)"
  cmake -S "$tree" -B "$tree/build-release" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ \
    -DCHOREO_BUILD_TESTS=OFF -DCHOREO_BUILD_BENCHMARKS=OFF >/dev/null || fail_step "configuring the baseline failed"
  cmake --build "$tree/build-release" -j "$(nproc)" --target shop >/dev/null || fail_step "building the baseline's shop failed"
  shops=(baseline current)
  shop_of[baseline]=$tree/build-release/examples/shop/shop
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # The Kafka broker is not this shell's child (it was started in a process substitution),
  # so `wait` does not wait for it: its data is removed only once it has exited, or it
  # writes into the folder being removed.
  for pid in "${pids[@]}"; do
    timeout 30 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
wait_for_port "$redis_port" 30
redis_url=redis://127.0.0.1:$redis_port
# Redis's own XADD rate on this server, one client, one command at a time: a round trip's
# worth on this machine at this moment, which drifts (10,000 to 18,000 per second on this VM
# within one day), hence measured before and after the loads and averaged.
measure_xadd() {
  local rate
  rate=$(redis-benchmark -p "$redis_port" -c 1 -P 1 -n 100000 -q XADD choreo:benchmark '*' f v |
    sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -n 1)
  [ -n "$rate" ] || fail_step "redis-benchmark printed no rate"
  redis-cli -p "$redis_port" DEL choreo:benchmark >/dev/null
  echo "redis-benchmark -c 1 -P 1 XADD, $1: $rate per second" >&2
  echo "$rate"
}
echo "==> Redis on $redis_url: its own XADD rate, one client, one command at a time"
xadd_before=$(measure_xadd "before the loads")
kafka_url=""
if [ -n "$kafka_libs" ]; then
  echo "==> starting a Kafka broker"
  read -r broker_pid kafka_port < <(start_kafka_broker "$kafka_libs" "$work/kafka")
  pids+=("$broker_pid")
  kafka_url=kafka://127.0.0.1:$kafka_port
fi

# run_load SHOP TRANSPORT ROUND [ORDERS]: six serving processes of SHOP, `shop load` through
# them (ORDERS orders, the script's ORDERS by default), then SIGTERM.
run_load() {
  local which=$1 transport=$2 name=$1-$2-$3 count=${4:-$orders}
  local shop=${shop_of[$which]} dir=$work/$name serving=() extra=()
  [ "$transport" = kafka ] && extra=(--kafka "$kafka_url")
  mkdir -p "$dir"
  for context in order product coupon point payment data_platform; do
    "$shop" serve --context "$context" --redis "$redis_url" --dir "$dir" --prefix "$name:" "${extra[@]}" \
      >"$dir/$context.log" 2>&1 &
    serving+=($!)
  done
  echo "==> $which shop, round $3 of $rounds: $count orders, $concurrency at a time, $products products, events over $transport"
  local status=0
  "$shop" load --redis "$redis_url" --dir "$dir" --prefix "$name:" --orders "$count" --concurrency "$concurrency" \
    --products "$products" --users 100 --timeout 600 | tee "$work/$name.out" || status=$?
  kill -TERM "${serving[@]}"
  wait "${serving[@]}" || true
  if [ "$status" -ne 0 ]; then
    for context in order product coupon point payment data_platform; do tail -5 "$dir/$context.log"; done
    fail_step "the load of the $which shop over $transport failed"
  fi
}

for transport in "${transports[@]}"; do
  # A broker in service has compiled its hot paths long ago; a fresh one's JVM spends the
  # first tens of seconds compiling them (perf put its compiler threads at a sixth of both
  # cores during a first load), which would be measured as Kafka's cost.
  if [ "$transport" = kafka ]; then
    echo "==> warming the broker up: 3000 orders through this checkout's shop, not counted"
    run_load current kafka warm-up 3000 >/dev/null
  fi
  for ((round = 1; round <= rounds; round++)); do
    for which in "${shops[@]}"; do run_load "$which" "$transport" "$round"; done
  done
done

echo "==> Redis's own XADD rate again"
xadd_after=$(measure_xadd "after the loads")
xadd_rate=$(python3 -c "print(f'{($xadd_before + $xadd_after) / 2:.0f}')")

# "throughput: 312.0 orders/s and 516.4 sagas/s over 9.6 s (...)"; "latency ...: p50 6.1 ms, ..."
figure_of() { sed -n "s/^throughput: \([0-9.]*\) orders\/s and \([0-9.]*\) sagas\/s.*/\\$2/p" "$work/$1.out"; }
latency_of() { sed -n "s/^latency from create.*p50 \([0-9.]*\) ms, p90 \([0-9.]*\) ms, p99 \([0-9.]*\) ms.*/\\$2/p" "$work/$1.out"; }
# The median round of SHOP-TRANSPORT by sagas per second: its name.
median_round() {
  local name=$1 r
  for ((r = 1; r <= rounds; r++)); do echo "$(figure_of "$name-$r" 2) $name-$r"; done | sort -n | awk '{ a[NR] = $2 } END { print a[int((NR + 1) / 2)] }'
}
figure() { figure_of "$(median_round "$1")" "$2"; }
latency() { latency_of "$(median_round "$1")" "$2"; }
[ "$rounds" -gt 1 ] && echo && echo "(each row is its shop's median round of $rounds by sagas per second; the rounds alternated between the shops)"
echo
echo "| shop | events over | orders/s | sagas/s | order p50 ms | p99 ms | sagas/s per XADD/s |"
echo "|---|---|---:|---:|---:|---:|---:|"
for transport in "${transports[@]}"; do
  for which in "${shops[@]}"; do
    name=$which-$transport
    per_xadd=$(python3 -c "print(f'{$(figure "$name" 2) / $xadd_rate:.4f}')")
    echo "| $which | $transport | $(figure "$name" 1) | $(figure "$name" 2) | $(latency "$name" 1) | $(latency "$name" 3) | $per_xadd |"
  done
done
echo "(Redis's own XADD rate in this run, one client, one command at a time: $xadd_rate per second, the mean of $xadd_before before the loads and $xadd_after after)"
ratio() { python3 -c "print(f'{$(figure "$1" 2) / $(figure "$2" 2):.2f}x')"; }
if [ -n "$baseline" ]; then
  for transport in "${transports[@]}"; do
    echo "current / baseline ($baseline), sagas per second over $transport: $(ratio "current-$transport" "baseline-$transport")"
  done
fi
if [ ${#transports[@]} -eq 2 ]; then
  echo "Kafka / Redis Streams, sagas per second (current): $(ratio current-kafka current-redis)"
fi
