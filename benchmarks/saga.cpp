// Scenario 5: what a saga costs in the in-memory store: bytes per in-flight saga, and
// store operations per second (a step is one claim plus one finish).
#include <choreo/saga/memory_store.hpp>

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "allocations.hpp"

namespace {

using namespace choreo::saga;

// The shape of the shop's order-creation saga: a start, seven steps, a two-branch fan-in.
void record_typical_saga(memory_store& store, const std::string& key, time_point now) {
    (void)store.create(key, now, now + std::chrono::seconds{30}, "order/create order", step_state::done);
    for (const char* step : {"product/deduct stock", "coupon/use coupons", "order/add items", "order/add coupons",
                             "order/confirm order", "payment/create payment", "order/record payment"}) {
        (void)store.claim(key, step);
        (void)store.finish(key, step, true);
    }
    (void)store.join(key, "order/confirm order", "order/add items");
    (void)store.join(key, "order/confirm order", "order/add coupons");
}

void memory_store_bytes_per_saga(benchmark::State& state) {
    constexpr int sagas = 10'000;
    double bytes = 0;
    for (auto _ : state) {
        memory_store store;
        auto before = bench::heap().live_bytes.load();
        auto now = std::chrono::system_clock::now();
        for (int i = 0; i < sagas; ++i) record_typical_saga(store, "OrderCreateStart:" + std::to_string(i), now);
        bytes = static_cast<double>(bench::heap().live_bytes.load() - before) / sagas;
    }
    state.counters["bytes_per_saga"] = bytes;
}

void memory_store_step(benchmark::State& state) {
    memory_store store;
    auto now = std::chrono::system_clock::now();
    (void)store.create("OrderCreateStart:1", now, now + std::chrono::hours{1}, "order/create order", step_state::done);
    std::vector<std::string> steps;
    for (int i = 0; i < 64; ++i) steps.push_back("context/step " + std::to_string(i));
    long n = 0;
    for (auto _ : state) {
        auto key = "OrderCreateStart:" + std::to_string(n++);
        (void)store.create(key, now, now + std::chrono::hours{1}, "order/create order", step_state::done);
        for (int s = 0; s < 4; ++s) {
            (void)store.claim(key, steps[static_cast<std::size_t>(s)]);
            (void)store.finish(key, steps[static_cast<std::size_t>(s)], true);
        }
        (void)store.complete(key);
    }
    state.counters["steps_per_second"] =
        benchmark::Counter(static_cast<double>(state.iterations() * 4), benchmark::Counter::kIsRate);
}

BENCHMARK(memory_store_bytes_per_saga)->Iterations(1);
BENCHMARK(memory_store_step);

} // namespace
