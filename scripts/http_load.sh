#!/usr/bin/env bash
# Load-tests the shop's web API with wrk: starts `shop serve --http` (Release build) on a
# free loopback port with its databases in a temporary directory, sets up a catalog (100
# products, 100 users with points), runs
# wrk against product search and against order creation, prints wrk's figures, audits the
# shop over the API and stops it with SIGTERM.
#   scripts/http_load.sh [transactional|saga] [SECONDS] [CONNECTIONS]
# On a fresh Debian 12 machine it first installs what is missing (wrk among it).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$choreo_root"

mode=${1:-transactional}
seconds=${2:-10}
connections=${3:-32}
ensure_packages "${core_packages[@]}" wrk curl
configure_and_build build-release -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ -DCHOREO_BUILD_TESTS=OFF \
  -DCHOREO_BUILD_BENCHMARKS=OFF >/dev/null

dir=$(mktemp -d)
log=$dir/server.log
build-release/examples/shop/shop serve --http 127.0.0.1:0 --dir "$dir/db" --mode "$mode" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
url=$(grep -o 'http://[0-9.:]*' "$log")
echo "==> $(head -1 "$log")"

json='Content-Type: application/json'
for n in $(seq 100); do
  curl -sf -XPOST "$url/api/v1/products" -H "$json" -d "{\"name\": \"item $n\", \"price\": $((100 + n)), \"stock\": 100000000}" >/dev/null
  curl -sf -XPOST "$url/api/v1/points/charge" -H "$json" -H "X-User-Id: $n" -d '{"amount": 1000000}' >/dev/null
done

echo "==> product search: GET /api/v1/products?name=item%2042, $connections connections, ${seconds}s"
wrk -t2 -c"$connections" -d"${seconds}s" --latency "$url/api/v1/products?name=item%2042&max_price=500"
echo "==> order creation: POST /api/v1/orders, 100 users, 100 products, $connections connections, ${seconds}s"
wrk -t2 -c"$connections" -d"${seconds}s" --latency -s scripts/lib/http_orders.lua "$url/api/v1/orders"

kill -TERM $server
wait $server
echo "==> the server stopped cleanly; auditing its databases after a restart"
build-release/examples/shop/shop serve --http 127.0.0.1:0 --dir "$dir/db" --mode "$mode" >"$log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
url=$(grep -o 'http://[0-9.:]*' "$log")
curl -sf "$url/api/v1/audit"
