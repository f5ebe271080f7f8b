// Scenario 7: sagas whose events cross a transport, as between the shop's processes: the
// saga state in Redis, each event leaving its step's commit for a Redis stream or a Kafka
// topic and reaching the next step through a consumer group, in one run.
//   sagas_over: three-step sagas (start, a step, a completing step), 400 a round started
//     from four threads; the two hops between the steps go over Redis Streams (transport=0)
//     or Kafka (transport=1): completed sagas per second.
// The broker is a single Kafka node the benchmark starts on loopback (as the tests do), the
// Redis a redis-server of its own; both on this machine, beside the benchmark.
#include <choreo/choreo.hpp>
#include <choreo/kafka.hpp>
#include <choreo/redis.hpp>

#include "../tests/support/kafka_broker.hpp"
#include "servers.hpp"

#include <benchmark/benchmark.h>
#include <boost/describe/class.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

struct trip_started {
    std::int64_t id = 0;
};
BOOST_DESCRIBE_STRUCT(trip_started, (), (id))
struct trip_reserved {
    std::int64_t id = 0;
};
BOOST_DESCRIBE_STRUCT(trip_reserved, (), (id))

// Flushing as Kafka does by default (the operating system's), as the Redis beside it does.
test_support::kafka_broker& kafka_broker() {
    static test_support::kafka_broker broker{false};
    return broker;
}

// What both transports share (Derived has send() and consume()): where an event of a step
// goes once the step committed, and the consumer groups that bring it to the next step.
template <class Derived>
class transport {
public:
    // After E's unit of work committed, the event leaves for its topic (without waiting).
    template <class E>
    void export_events(choreo::bus& bus) {
        connections_.push_back(
            bus.subscribe<E>([this](const E& e, const choreo::envelope& env) { self().send(topic_of<E>(), e, env); },
                             {.name = "export", .when = choreo::phase::after_commit}));
    }
    // The source of a step_from(): a consumer group on E's topic that runs the step.
    template <class E>
    auto source() {
        return [this](const std::string& listener, std::function<void(const E&, const choreo::envelope&)> deliver) {
            self().template consume<E>(listener, std::move(deliver));
        };
    }
    [[nodiscard]] std::uint64_t failed_sends() const { return failed_.load(); }

protected:
    template <class E>
    [[nodiscard]] std::string topic_of() const {
        return name_ + (std::is_same_v<E, trip_started> ? "-started" : "-reserved");
    }

    std::string name_;
    std::vector<choreo::connection> connections_;
    std::atomic<std::uint64_t> failed_{0};

private:
    Derived& self() { return static_cast<Derived&>(*this); }
};

class over_redis final : public transport<over_redis> {
public:
    over_redis() : publisher_(bench::redis_env::get().redis) { name_ = bench::redis_env::get().prefix() + "trips"; }
    ~over_redis() { stop(); }

    template <class E>
    void send(const std::string& stream, const E& e, const choreo::envelope& env) {
        publisher_.async_publish(stream, e, env, [this](std::exception_ptr error, std::string) {
            if (error) ++failed_;
        });
    }
    template <class E>
    void consume(const std::string& listener, std::function<void(const E&, const choreo::envelope&)> deliver) {
        auto& env = bench::redis_env::get();
        readers_.push_back(std::make_unique<choreo::redis::connection>(env.io.executor(), env.server.url()));
        choreo::redis::stream_consumer_options o;
        o.stream = topic_of<E>();
        o.group = listener;
        o.consumer = "bench";
        o.block = std::chrono::milliseconds{100};
        o.concurrency = 4; // steps of different sagas side by side
        consumers_.push_back(std::make_unique<choreo::redis::stream_consumer<>>(*readers_.back(), o));
        consumers_.back()->on<E>(std::move(deliver));
    }
    void start() {
        for (auto& c : consumers_) c->start();
    }
    void stop() {
        for (auto& c : consumers_) c->stop();
    }
    // What its consumers measured of each hop (choreo::durable::hop_latency).
    void add_hops_to(choreo::durable::hop_latency& hops) const {
        for (auto& c : consumers_) hops.add(c->hops());
    }

private:
    choreo::redis::stream_publisher<> publisher_;
    std::vector<std::unique_ptr<choreo::redis::connection>> readers_;
    std::vector<std::unique_ptr<choreo::redis::stream_consumer<>>> consumers_;
};

class over_kafka final : public transport<over_kafka> {
public:
    over_kafka() : producer_(client()) {
        static std::atomic<int> runs{0};
        name_ = "bench-trips-" + std::to_string(++runs);
        for (const char* kind : {"-started", "-reserved"}) {
            choreo::kafka::create_topic(client(), name_ + kind, 4);
            producer_.prepare(name_ + kind);
        }
    }
    ~over_kafka() { stop(); }

    template <class E>
    void send(const std::string& topic, const E& e, const choreo::envelope& env) {
        producer_.async_publish(topic, e, env, [this](std::exception_ptr error) {
            if (error) ++failed_;
        });
    }
    template <class E>
    void consume(const std::string& listener, std::function<void(const E&, const choreo::envelope&)> deliver) {
        choreo::kafka::consumer_options o;
        o.client = client();
        o.topics = {topic_of<E>()};
        o.group = name_ + "-" + std::to_string(consumers_.size());
        o.poll = std::chrono::milliseconds{100};
        o.concurrency = 4; // steps of different sagas side by side
        consumers_.push_back(std::make_unique<choreo::kafka::consumer<>>(o));
        consumers_.back()->on<E>(std::move(deliver));
        (void)listener;
    }
    // The groups have their partitions before the clock runs.
    void start() {
        for (auto& c : consumers_) c->start();
        for (auto& c : consumers_)
            while (!c->assigned()) std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    void stop() {
        for (auto& c : consumers_) c->stop();
    }
    // What its consumers measured of each hop (choreo::durable::hop_latency).
    void add_hops_to(choreo::durable::hop_latency& hops) const {
        for (auto& c : consumers_) hops.add(c->hops());
    }

private:
    static choreo::kafka::client_options client() {
        auto o = choreo::kafka::client_options::from_url(kafka_broker().url());
        o.timeout = std::chrono::seconds{30};
        // librdkafka's warnings while a fresh broker loads its coordinators are routine here.
        o.log = [](int level, const std::string& facility, const std::string& message) {
            if (level <= 3) std::fprintf(stderr, "kafka %s: %s\n", facility.c_str(), message.c_str());
        };
        return o;
    }
    choreo::kafka::producer<> producer_;
    std::vector<std::unique_ptr<choreo::kafka::consumer<>>> consumers_;
};

template <class Transport>
void run_sagas(benchmark::State& state) {
    using namespace choreo::saga;
    constexpr int per_round = 400;
    auto& env = bench::redis_env::get();
    choreo::redis::saga_store store{env.redis, choreo::redis::saga_store_options{.prefix = env.prefix()}};
    choreo::bus bus{{.threads = 4}};
    auto link = std::make_unique<Transport>();
    std::atomic<long> completed{0};
    double xadd_before = 0, xadd_after = 0;
    std::chrono::duration<double> elapsed{};
    {
        runtime rt{bus, store, {.timeout = std::chrono::seconds{60}}};
        choreo::no_resource a_db, b_db, c_db;
        participant a{rt, "a", a_db}, b{rt, "b", b_db}, c{rt, "c", c_db};
        a.starts<trip_started>("start", [](const trip_started&, step_context&) {});
        link->template export_events<trip_started>(bus);
        link->template export_events<trip_reserved>(bus);
        b.step_from<trip_started>(
            link->template source<trip_started>(), "reserve",
            [](const trip_started& e, step_context& ctx) { ctx.publish(trip_reserved{e.id}); },
            [](const trip_started&, step_context&) {});
        c.step_from<trip_reserved>(
            link->template source<trip_reserved>(), "complete",
            [&](const trip_reserved&, step_context& ctx) {
                ctx.complete_saga();
                completed.fetch_add(1, std::memory_order_relaxed);
            },
            [](const trip_reserved&, step_context&) {});
        link->start();
        long next = 0;
        long target = 0;
        // A round of sagas, started from four threads; false if an event was not delivered.
        auto round = [&] {
            target += per_round;
            bench::from_four_threads(next, per_round, [&](long i) {
                auto unit = bus.begin(a_db);
                a.start(unit, trip_started{i}, "trip:" + std::to_string(i));
                unit.commit();
            });
            next += per_round;
            while (completed.load(std::memory_order_relaxed) < target) {
                if (link->failed_sends() > 0) return false;
                std::this_thread::sleep_for(std::chrono::microseconds{200});
            }
            return true;
        };
        // One round before the clock runs: a producer's first record to a topic waits for
        // the topic's metadata (about a second on Kafka), which a running service pays once.
        constexpr const char* undelivered = "an event was not delivered to the transport";
        xadd_before = bench::one_client_xadd_rate();
        if (!round()) state.SkipWithError(undelivered); // then the loop below does not run
        auto clock_started = std::chrono::steady_clock::now();
        for (auto _ : state)
            if (!round()) {
                state.SkipWithError(undelivered);
                break;
            }
        elapsed = std::chrono::steady_clock::now() - clock_started;
        xadd_after = bench::one_client_xadd_rate();
        link->stop();
        rt.drain();
    }
    state.counters["sagas_per_second"] =
        benchmark::Counter(static_cast<double>(state.iterations() * per_round), benchmark::Counter::kIsRate);
    // The same rate against Redis's own one-client XADD rate on the same server in the same
    // run (the mean of one before the clock and one after), as the shop's load reports it.
    const double xadd = (xadd_before + xadd_after) / 2;
    state.counters["redis_xadd_per_second"] = xadd;
    if (xadd > 0 && elapsed.count() > 0)
        state.counters["sagas_per_xadd"] = static_cast<double>(state.iterations() * per_round) / elapsed.count() / xadd;
    // Where a hop's time went, by stage (docs/redis.md#where-a-hops-time-goes), in µs.
    choreo::durable::hop_latency hops;
    link->add_hops_to(hops);
    for (auto stage : choreo::durable::hop_latency::stages) {
        auto name = "hop_" + std::string{choreo::durable::to_string(stage)};
        state.counters[name + "_p50_us"] = static_cast<double>(hops.of(stage).percentile(50).count());
        state.counters[name + "_p99_us"] = static_cast<double>(hops.of(stage).percentile(99).count());
    }
}

void sagas_over(benchmark::State& state) {
    if (state.range(0) != 0) {
        run_sagas<over_kafka>(state);
        state.SetLabel("kafka");
    } else {
        run_sagas<over_redis>(state);
        state.SetLabel("redis streams");
    }
}

BENCHMARK(sagas_over)
    ->ArgNames({"transport"})
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2.0);

} // namespace
