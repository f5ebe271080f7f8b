// The transactional outbox on PostgreSQL (issue 25), against a server the benchmark starts
// itself (tests/support/postgresql_server.hpp: initdb into a temporary directory, loopback),
// with PostgreSQL's durable defaults: fsync on, synchronous_commit on. Same shapes as
// durable.cpp's SQLite benchmarks, so the two read side by side:
//   postgresql_outbox_relay: the relay alone, draining 10,000 committed rows in batches.
//   postgresql_outbox_commit_and_relay: one transaction per event (a business row, the
//     event's outbox row) with the relay delivering at the same time, until all delivered.
//   postgresql_commit_only: the same transactions with no event, the ceiling to compare with.
#include <choreo/durable.hpp>
#include <choreo/postgresql.hpp>

#include "../tests/support/postgresql_server.hpp"

#include <benchmark/benchmark.h>
#include <boost/describe/class.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

namespace {

struct paid_order {
    std::int64_t order_id = 0;
    std::int64_t amount = 0;
};
BOOST_DESCRIBE_STRUCT(paid_order, (), (order_id, amount))

test_support::postgresql_server& server() {
    static test_support::postgresql_server instance{{"fsync=on", "synchronous_commit=on"}};
    return instance;
}

// A fresh schema per benchmark run, with the business table.
struct bench_schema {
    bench_schema() {
        static int count = 0;
        auto schema = "bench_" + std::to_string(++count);
        choreo::postgresql::database admin{server().conninfo()};
        (void)admin.execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE; CREATE SCHEMA " + schema);
        conninfo = server().conninfo() + " options=-csearch_path=" + schema;
        db = std::make_unique<choreo::postgresql::database>(conninfo);
        (void)db->execute("CREATE TABLE orders (id BIGINT PRIMARY KEY, amount BIGINT NOT NULL)");
    }
    std::string conninfo;
    std::unique_ptr<choreo::postgresql::database> db;
};

std::int64_t next_order = 1;

void commit_order(choreo::bus& bus, choreo::postgresql::database& db, bool with_event) {
    auto unit = bus.begin(db);
    const std::int64_t id = next_order++;
    (void)db.query("INSERT INTO orders (id, amount) VALUES ($1, $2)", {id, std::int64_t{100}});
    if (with_event) unit.publish(paid_order{id, 100});
    unit.commit();
}

constexpr int rows_per_iteration = 10'000;
constexpr int events_per_iteration = 1'000;

void postgresql_outbox_relay(benchmark::State& state) {
    bench_schema storage;
    choreo::bus bus{{.threads = 1}};
    choreo::postgresql::outbox_store store{*storage.db};
    choreo::durable::outbox relay{bus, store, {.relay = false, .batch_size = static_cast<std::size_t>(state.range(0))}};
    std::int64_t delivered = 0;
    relay.subscribe<paid_order>([&](const paid_order& e) { benchmark::DoNotOptimize(delivered += e.amount > 0); },
                                {.name = "send to data platform"});
    std::int64_t relayed = 0;
    for (auto _ : state) {
        state.PauseTiming();
        {
            auto unit = bus.begin(*storage.db);
            for (int i = 0; i < rows_per_iteration; ++i) unit.publish(paid_order{next_order++, 100});
            unit.commit();
        }
        state.ResumeTiming();
        while (relay.relay_once() != 0) {}
        relayed += rows_per_iteration;
    }
    if (delivered != relayed) state.SkipWithError("the relay lost or repeated rows");
    state.counters["events_per_second"] = benchmark::Counter(static_cast<double>(relayed), benchmark::Counter::kIsRate);
}

void postgresql_outbox_commit_and_relay(benchmark::State& state) {
    bench_schema storage;
    choreo::bus bus{{.threads = 2}};
    choreo::postgresql::outbox_store store{*storage.db};
    choreo::durable::outbox relay{bus, store, {.batch_size = 256}};
    std::atomic<std::int64_t> delivered{0};
    relay.subscribe<paid_order>([&](const paid_order&) { delivered.fetch_add(1, std::memory_order_relaxed); },
                                {.name = "send to data platform"});
    relay.start();
    std::int64_t committed = 0;
    for (auto _ : state) {
        for (int i = 0; i < events_per_iteration; ++i) commit_order(bus, *storage.db, true);
        committed += events_per_iteration;
        while (delivered.load(std::memory_order_relaxed) < committed) std::this_thread::yield();
    }
    state.counters["events_per_second"] =
        benchmark::Counter(static_cast<double>(committed), benchmark::Counter::kIsRate);
}

void postgresql_commit_only(benchmark::State& state) {
    bench_schema storage;
    choreo::bus bus{{.threads = 1}};
    std::int64_t committed = 0;
    for (auto _ : state) {
        for (int i = 0; i < events_per_iteration; ++i) commit_order(bus, *storage.db, false);
        committed += events_per_iteration;
    }
    state.counters["events_per_second"] =
        benchmark::Counter(static_cast<double>(committed), benchmark::Counter::kIsRate);
}

BENCHMARK(postgresql_outbox_relay)->ArgNames({"batch"})->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(postgresql_outbox_commit_and_relay)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(postgresql_commit_only)->Unit(benchmark::kMillisecond)->UseRealTime();

} // namespace
