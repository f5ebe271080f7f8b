// Scenario 5: the transactional outbox on SQLite, in memory and on disk (WAL,
// synchronous=NORMAL). The public anchor is an untuned PostgreSQL outbox relay at about
// 14,500 events per second.
//   outbox_relay: the relay alone, draining 10,000 committed rows in batches.
//   outbox_commit_and_relay: one transaction per event (a business row, the event's
//     outbox row) with the relay delivering on the bus's pool at the same time, until
//     every event was delivered.
//   sqlite_commit_only: the same transactions with no event, the ceiling to compare with.
#include <choreo/durable.hpp>
#include <choreo/sqlite.hpp>

#include <benchmark/benchmark.h>
#include <boost/describe/class.hpp>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

namespace {

struct order_paid {
    std::int64_t order_id = 0;
    std::int64_t amount = 0;
};
BOOST_DESCRIBE_STRUCT(order_paid, (), (order_id, amount))

// A fresh database per benchmark run: in memory, or a file in the temporary directory.
struct bench_db {
    explicit bench_db(bool on_disk)
        : path(on_disk ? (std::filesystem::temp_directory_path() / "choreo-bench-outbox.db").string() : ":memory:") {
        remove_files();
        db = std::make_unique<choreo::sqlite::database>(path);
        db->execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)");
    }
    ~bench_db() {
        db.reset();
        remove_files();
    }
    void remove_files() const {
        if (path == ":memory:") return;
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
    }
    std::string path;
    std::unique_ptr<choreo::sqlite::database> db;
};

std::int64_t next_order = 1;

void commit_order(choreo::bus& bus, choreo::sqlite::database& db, bool with_event) {
    auto unit = bus.begin(db);
    const std::int64_t id = next_order++;
    choreo::sqlite::statement insert{db, "INSERT INTO orders (id, amount) VALUES (?, ?)"};
    insert.bind(id, std::int64_t{100}).run();
    if (with_event) unit.publish(order_paid{id, 100});
    unit.commit();
}

constexpr int rows_per_iteration = 10'000;

void outbox_relay(benchmark::State& state) {
    bench_db storage{state.range(0) != 0};
    choreo::bus bus{{.threads = 1}};
    choreo::sqlite::outbox_store store{*storage.db};
    choreo::durable::outbox relay{bus, store, {.relay = false, .batch_size = static_cast<std::size_t>(state.range(1))}};
    std::int64_t delivered = 0;
    relay.subscribe<order_paid>([&](const order_paid& e) { benchmark::DoNotOptimize(delivered += e.amount > 0); },
                                {.name = "send to data platform"});
    std::int64_t relayed = 0;
    for (auto _ : state) {
        state.PauseTiming();
        {
            auto unit = bus.begin(*storage.db);
            for (int i = 0; i < rows_per_iteration; ++i) unit.publish(order_paid{next_order++, 100});
            unit.commit();
        }
        state.ResumeTiming();
        while (relay.relay_once() != 0) {}
        relayed += rows_per_iteration;
    }
    if (delivered != relayed) state.SkipWithError("the relay lost or repeated rows");
    state.counters["events_per_second"] = benchmark::Counter(static_cast<double>(relayed), benchmark::Counter::kIsRate);
}

constexpr int events_per_iteration = 1'000;

void outbox_commit_and_relay(benchmark::State& state) {
    bench_db storage{state.range(0) != 0};
    choreo::bus bus{{.threads = 2}};
    choreo::sqlite::outbox_store store{*storage.db};
    choreo::durable::outbox relay{bus, store, {.batch_size = 256}};
    std::atomic<std::int64_t> delivered{0};
    relay.subscribe<order_paid>([&](const order_paid&) { delivered.fetch_add(1, std::memory_order_relaxed); },
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

void sqlite_commit_only(benchmark::State& state) {
    bench_db storage{state.range(0) != 0};
    choreo::bus bus{{.threads = 1}};
    std::int64_t committed = 0;
    for (auto _ : state) {
        for (int i = 0; i < events_per_iteration; ++i) commit_order(bus, *storage.db, false);
        committed += events_per_iteration;
    }
    state.counters["events_per_second"] =
        benchmark::Counter(static_cast<double>(committed), benchmark::Counter::kIsRate);
}

BENCHMARK(outbox_relay)
    ->ArgNames({"disk", "batch"})
    ->Args({0, 256})
    ->Args({1, 256})
    ->Args({1, 32})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(outbox_commit_and_relay)->ArgNames({"disk"})->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(sqlite_commit_only)->ArgNames({"disk"})->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

} // namespace
