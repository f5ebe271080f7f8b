// Immediate dispatch against its peers in the same binary: a plain call, a vector of
// std::function, and Boost.Signals2. ns per publish at 1, 4 and 16 listeners.
#include <choreo/choreo.hpp>

#include <benchmark/benchmark.h>
#include <boost/signals2/signal.hpp>

#include <functional>
#include <vector>

namespace {

struct tick {
    long value;
};

long sink = 0;
[[gnu::noinline]] void handle(const tick& t) { sink += t.value; }

void plain_call(benchmark::State& state) {
    auto listeners = state.range(0);
    for (auto _ : state) {
        for (long i = 0; i < listeners; ++i) handle(tick{1});
    }
    benchmark::DoNotOptimize(sink);
}

void std_function_vector(benchmark::State& state) {
    std::vector<std::function<void(const tick&)>> listeners(static_cast<std::size_t>(state.range(0)), &handle);
    for (auto _ : state) {
        tick t{1};
        for (auto& f : listeners) f(t);
    }
    benchmark::DoNotOptimize(sink);
}

void signals2_signal(benchmark::State& state) {
    boost::signals2::signal<void(const tick&)> signal;
    for (long i = 0; i < state.range(0); ++i) signal.connect(&handle);
    for (auto _ : state) signal(tick{1});
    benchmark::DoNotOptimize(sink);
}

void choreo_immediate(benchmark::State& state) {
    choreo::bus bus{{.threads = 1}};
    std::vector<choreo::connection> connections;
    for (long i = 0; i < state.range(0); ++i) connections.push_back(bus.subscribe<tick>(&handle));
    for (auto _ : state) bus.publish(tick{1});
    benchmark::DoNotOptimize(sink);
}

void choreo_unit_of_work(benchmark::State& state) {
    choreo::bus bus{{.threads = 1}};
    auto before = bus.subscribe<tick>(&handle, {.when = choreo::phase::before_commit});
    auto after = bus.subscribe<tick>(&handle, {.when = choreo::phase::after_commit});
    choreo::no_resource db;
    for (auto _ : state) {
        auto unit = bus.begin(db);
        bus.publish(tick{1});
        unit.commit();
    }
    benchmark::DoNotOptimize(sink);
}

BENCHMARK(plain_call)->Arg(1)->Arg(4)->Arg(16);
BENCHMARK(std_function_vector)->Arg(1)->Arg(4)->Arg(16);
BENCHMARK(signals2_signal)->Arg(1)->Arg(4)->Arg(16);
BENCHMARK(choreo_immediate)->Arg(1)->Arg(4)->Arg(16);
BENCHMARK(choreo_unit_of_work);

} // namespace

BENCHMARK_MAIN();
