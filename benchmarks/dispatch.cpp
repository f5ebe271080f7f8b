// Scenarios 1 and 2: immediate dispatch against every peer in the same binary (a plain
// call, a vector of std::function, Boost.Signals2 with and without its mutex, libsigc++),
// and a unit of work with one before_commit and one after_commit listener.
#include <choreo/choreo.hpp>

#include <benchmark/benchmark.h>
#include <boost/signals2/dummy_mutex.hpp>
#include <boost/signals2/signal.hpp>
#include <boost/signals2/signal_type.hpp>
#include <sigc++/sigc++.h>

#include <functional>
#include <vector>

#include "allocations.hpp"

namespace {

struct tick {
    long value;
};

long sink = 0;
[[gnu::noinline]] void handle(const tick& t) { sink += t.value; }

// Reports what every dispatch benchmark reports: events per second and allocations per event.
class report {
public:
    explicit report(benchmark::State& state) : state_(state) {}
    ~report() {
        auto events = static_cast<double>(state_.iterations());
        state_.counters["events_per_second"] = benchmark::Counter(events, benchmark::Counter::kIsRate);
        state_.counters["allocations_per_event"] = static_cast<double>(meter_.count()) / std::max(events, 1.0);
        benchmark::DoNotOptimize(sink);
    }

private:
    benchmark::State& state_;
    bench::allocation_meter meter_;
};

void plain_call(benchmark::State& state) {
    auto listeners = state.range(0);
    report r{state};
    for (auto _ : state)
        for (long i = 0; i < listeners; ++i) handle(tick{1});
}

void std_function_vector(benchmark::State& state) {
    std::vector<std::function<void(const tick&)>> listeners(static_cast<std::size_t>(state.range(0)), &handle);
    report r{state};
    for (auto _ : state) {
        tick t{1};
        for (auto& f : listeners) f(t);
    }
}

void signals2_signal(benchmark::State& state) {
    boost::signals2::signal<void(const tick&)> signal;
    for (long i = 0; i < state.range(0); ++i) signal.connect(&handle);
    report r{state};
    for (auto _ : state) signal(tick{1});
}

void signals2_dummy_mutex(benchmark::State& state) {
    using unlocked =
        boost::signals2::signal_type<void(const tick&),
                                     boost::signals2::keywords::mutex_type<boost::signals2::dummy_mutex>>::type;
    unlocked signal;
    for (long i = 0; i < state.range(0); ++i) signal.connect(&handle);
    report r{state};
    for (auto _ : state) signal(tick{1});
}

void libsigcpp_signal(benchmark::State& state) {
    sigc::signal<void(const tick&)> signal;
    for (long i = 0; i < state.range(0); ++i) signal.connect(sigc::ptr_fun(&handle));
    report r{state};
    for (auto _ : state) signal.emit(tick{1});
}

void choreo_immediate(benchmark::State& state) {
    choreo::bus bus{{.threads = 1}};
    std::vector<choreo::connection> connections;
    for (long i = 0; i < state.range(0); ++i) connections.push_back(bus.subscribe<tick>(&handle));
    report r{state};
    for (auto _ : state) bus.publish(tick{1});
}

void choreo_unit_of_work(benchmark::State& state) {
    choreo::bus bus{{.threads = 1}};
    auto before = bus.subscribe<tick>(&handle, {.when = choreo::phase::before_commit});
    auto after = bus.subscribe<tick>(&handle, {.when = choreo::phase::after_commit});
    choreo::no_resource db;
    report r{state};
    for (auto _ : state) {
        auto unit = bus.begin(db);
        bus.publish(tick{1});
        unit.commit();
    }
}

BENCHMARK(plain_call)->Arg(1)->Arg(4)->Arg(16);
BENCHMARK(std_function_vector)->Arg(1)->Arg(4)->Arg(16);
BENCHMARK(signals2_signal)->Arg(1)->Arg(4)->Arg(16);
BENCHMARK(signals2_dummy_mutex)->Arg(1)->Arg(4)->Arg(16);
BENCHMARK(libsigcpp_signal)->Arg(1)->Arg(4)->Arg(16);
BENCHMARK(choreo_immediate)->Arg(1)->Arg(4)->Arg(16);
BENCHMARK(choreo_unit_of_work);

} // namespace
