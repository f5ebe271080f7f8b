// Scenario 6: sagas and events through Redis, against the same work in process, in one run.
// A redis-server of the benchmark's own runs on a free loopback port.
//   saga_store_step: a step's store operations (claim, finish) per second, memory or Redis,
//     from 1 or 4 threads (Redis pipelines the threads' commands on one connection).
//   sagas: three-step sagas (start, a step, a completing step) on a bus with four threads,
//     started from four threads, state in memory or in Redis: completed sagas per second.
//     The public anchor is DTM's Redis-backed figure, about 10,800 global transactions/s.
//   streams: events published (XADD, pipelined) and consumed by a consumer group with
//     acknowledgement: events per second end to end.
#include <choreo/choreo.hpp>
#include <choreo/redis.hpp>
#include <choreo/saga/memory_store.hpp>

#include "servers.hpp"

#include <benchmark/benchmark.h>
#include <boost/describe/class.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using bench::redis_env;

struct job_started {
    std::int64_t id = 0;
};
struct job_reserved {
    std::int64_t id = 0;
};
struct job_event {
    std::int64_t id = 0;
};
BOOST_DESCRIBE_STRUCT(job_event, (), (id))

// The store under test for one benchmark run: a memory_store, or a Redis store with a fresh prefix.
struct either_store {
    explicit either_store(bool redis) {
        if (redis) {
            auto& env = redis_env::get();
            on_redis = std::make_unique<choreo::redis::saga_store>(
                env.redis, choreo::redis::saga_store_options{.prefix = env.prefix()});
        } else {
            in_memory = std::make_unique<choreo::saga::memory_store>();
        }
    }
    template <class F>
    decltype(auto) with(F&& f) {
        if (on_redis) return f(*on_redis);
        return f(*in_memory);
    }
    std::unique_ptr<choreo::saga::memory_store> in_memory;
    std::unique_ptr<choreo::redis::saga_store> on_redis;
};

std::unique_ptr<either_store> shared_store;

void saga_store_step(benchmark::State& state) {
    using namespace choreo::saga;
    if (state.thread_index() == 0) shared_store = std::make_unique<either_store>(state.range(0) != 0);
    // Google Benchmark starts every thread's loop together, after thread 0's setup above.
    auto now = std::chrono::system_clock::now();
    long n = 0;
    for (auto _ : state) {
        auto key = "t" + std::to_string(state.thread_index()) + ":" + std::to_string(n++);
        shared_store->with([&](auto& store) {
            (void)store.create(key, now, now + std::chrono::hours{1}, "a/start", step_state::done);
            for (const char* step : {"b/one", "c/two", "d/three", "e/four"}) {
                (void)store.claim(key, step);
                (void)store.finish(key, step, true);
            }
            (void)store.complete(key);
            return 0;
        });
    }
    state.counters["steps_per_second"] =
        benchmark::Counter(static_cast<double>(state.iterations() * 4), benchmark::Counter::kIsRate);
    if (state.thread_index() == 0) state.SetLabel(state.range(0) != 0 ? "redis" : "memory");
}

void sagas(benchmark::State& state) {
    using namespace choreo::saga;
    constexpr int per_round = 400;
    either_store store{state.range(0) != 0};
    choreo::bus bus{{.threads = 4}};
    std::atomic<long> completed{0};
    auto run = [&](auto& s) {
        runtime rt{bus, s, {.timeout = std::chrono::seconds{60}}};
        choreo::no_resource a_db, b_db, c_db;
        participant a{rt, "a", a_db}, b{rt, "b", b_db}, c{rt, "c", c_db};
        a.starts<job_started>("start", [](const job_started&, step_context&) {});
        b.step<job_started>(
            "reserve", [](const job_started& e, step_context& ctx) { ctx.publish(job_reserved{e.id}); },
            [](const job_started&, step_context&) {});
        c.step<job_reserved>("charge", [&](const job_reserved&, step_context& ctx) {
            ctx.complete_saga();
            completed.fetch_add(1, std::memory_order_relaxed);
        });
        long next = 0;
        long target = 0;
        for (auto _ : state) {
            target += per_round;
            bench::from_four_threads(next, per_round, [&](long i) {
                auto unit = bus.begin(a_db);
                a.start(unit, job_started{i}, std::to_string(i));
                unit.commit();
            });
            next += per_round;
            while (completed.load(std::memory_order_relaxed) < target) std::this_thread::yield();
        }
        rt.drain();
    };
    store.with([&](auto& s) {
        run(s);
        return 0;
    });
    state.counters["sagas_per_second"] =
        benchmark::Counter(static_cast<double>(state.iterations() * per_round), benchmark::Counter::kIsRate);
    state.SetLabel(state.range(0) != 0 ? "redis" : "memory");
}

void streams(benchmark::State& state) {
    constexpr int per_round = 2'000;
    auto& env = redis_env::get();
    auto stream = env.prefix() + "events";
    auto options = choreo::redis::parse_url(env.server.url());
    choreo::redis::connection reader{env.io.executor(), options};
    choreo::redis::stream_publisher publisher{env.redis, {.max_length = 100'000, .approximate = true}};
    choreo::redis::stream_consumer_options o;
    o.stream = stream;
    o.group = "bench";
    o.consumer = "c1";
    o.batch = 512;
    o.block = std::chrono::milliseconds{100};
    choreo::redis::stream_consumer consumer{reader, o};
    consumer.on<job_event>([](const job_event&, const choreo::envelope&) {});
    consumer.start();
    choreo::envelope env_template{choreo::event_id{1, 0}, choreo::event_id{}, choreo::correlation_key{"k"},
                                  std::chrono::system_clock::now(), "job_event"};
    std::uint64_t published = 0;
    for (auto _ : state) {
        std::atomic<int> acked{0};
        for (int i = 0; i < per_round; ++i) {
            auto e = env_template;
            e.id.low = ++published;
            publisher.async_publish(
                stream, job_event{static_cast<std::int64_t>(published)}, e,
                [&](std::exception_ptr, std::string) { acked.fetch_add(1, std::memory_order_relaxed); });
        }
        while (consumer.handled() < published) std::this_thread::yield();
        while (acked.load() < per_round) std::this_thread::yield();
    }
    consumer.stop();
    state.counters["events_per_second"] =
        benchmark::Counter(static_cast<double>(state.iterations() * per_round), benchmark::Counter::kIsRate);
}

BENCHMARK(saga_store_step)->ArgNames({"redis"})->Arg(0)->Arg(1)->Threads(1)->Threads(4)->UseRealTime();
BENCHMARK(sagas)->ArgNames({"redis"})->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(streams)->Unit(benchmark::kMillisecond)->UseRealTime();

} // namespace
