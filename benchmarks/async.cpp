// Scenario 3: asynchronous after_commit delivery to a thread pool, with and without
// per-key ordering, against raw boost::asio::post of one handler per event. Each
// iteration delivers 1,000 events and waits until all have run.
#include <choreo/choreo.hpp>

#include <benchmark/benchmark.h>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "allocations.hpp"

namespace {

constexpr long events_per_iteration = 1000;

struct job {
    long value;
};

std::atomic<long> handled{0};

void wait_for(long target) {
    while (handled.load(std::memory_order_acquire) < target) std::this_thread::yield();
}

void report(benchmark::State& state, const bench::allocation_meter& meter) {
    auto events = static_cast<double>(state.iterations() * events_per_iteration);
    state.counters["events_per_second"] = benchmark::Counter(events, benchmark::Counter::kIsRate);
    state.counters["allocations_per_event"] = static_cast<double>(meter.count()) / std::max(events, 1.0);
}

void raw_asio_post(benchmark::State& state) {
    boost::asio::thread_pool pool{2};
    handled = 0;
    long target = 0;
    bench::allocation_meter meter;
    for (auto _ : state) {
        for (long i = 0; i < events_per_iteration; ++i)
            boost::asio::post(pool, [] { handled.fetch_add(1, std::memory_order_acq_rel); });
        target += events_per_iteration;
        wait_for(target);
    }
    report(state, meter);
    pool.join();
}

// range(0): events per unit of work; range(1): 1 for per-key ordering (16 keys).
void choreo_async_after_commit(benchmark::State& state) {
    const long per_unit = state.range(0);
    const bool per_key = state.range(1) != 0;
    choreo::bus bus{{.threads = 2}};
    auto listener = bus.subscribe<job>([](const job&) { handled.fetch_add(1, std::memory_order_acq_rel); },
                                       {.name = "count",
                                        .when = choreo::phase::after_commit,
                                        .mode = choreo::delivery::asynchronous,
                                        .order_by = per_key ? choreo::ordering::per_key : choreo::ordering::none});
    std::vector<choreo::correlation_key> keys;
    for (int k = 0; k < 16; ++k) keys.emplace_back("order-" + std::to_string(k));
    choreo::no_resource db;
    handled = 0;
    long target = 0;
    bench::allocation_meter meter;
    for (auto _ : state) {
        for (long i = 0; i < events_per_iteration; i += per_unit) {
            auto unit = bus.begin(db);
            for (long j = 0; j < per_unit; ++j) unit.publish(job{i + j}, keys[static_cast<std::size_t>((i + j) % 16)]);
            unit.commit();
        }
        target += events_per_iteration;
        wait_for(target);
    }
    report(state, meter);
    bus.drain();
}

BENCHMARK(raw_asio_post)->UseRealTime();
BENCHMARK(choreo_async_after_commit)
    ->ArgNames({"events_per_commit", "per_key"})
    ->Args({1, 0})
    ->Args({1, 1})
    ->Args({100, 0})
    ->Args({100, 1})
    ->UseRealTime();

} // namespace
