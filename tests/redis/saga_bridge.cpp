// A saga across two "processes" (two buses, two runtimes, no shared memory but Redis): the
// order participant starts it in one, the payment step runs in the other from a stream,
// the saga state is in Redis, and the saga bridge carries rollbacks and ends between them.

#include <choreo/redis/saga_bridge.hpp>
#include <choreo/redis/saga_store.hpp>
#include <choreo/redis/streams.hpp>
#include <choreo/saga.hpp>

#include "../core/support.hpp"
#include "../support/redis_server.hpp"

#include <boost/describe/class.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace choreo::redis;
using namespace std::chrono_literals;
using test::eventually;

namespace {

struct job_started {
    std::int64_t id = 0;
    bool payable = true;
};
BOOST_DESCRIBE_STRUCT(job_started, (), (id, payable))

connection_options reader_options(const test_support::redis_server& server) {
    auto o = parse_url(server.url());
    o.command_timeout = 2s;
    return o;
}

// What a process has of its own: a bus, a store client, a runtime, and a bridge.
struct process {
    process(test_support::redis_server& server, test_support::io_thread& io, connection& writer,
            const std::string& name)
        : reader(io.executor(), reader_options(server)), store(writer, {.prefix = "app:"}),
          sagas(bus, store, {.timeout = 30s}), bridge(bus, writer, reader, {.stream = "app:sagas", .process = name}) {}
    choreo::bus bus{{.threads = 2}};
    connection reader;
    saga_store store;
    choreo::saga::runtime sagas;
    saga_bridge bridge;
};

} // namespace

TEST_CASE("a saga across two processes: a step failing in one is compensated in the other, and ends reach both") {
    test_support::redis_server server;
    test_support::io_thread io;
    connection writer{io.executor(), server.url()};
    std::mutex m;
    std::vector<std::string> log;
    auto note = [&](std::string line) {
        std::lock_guard lock{m};
        log.push_back(std::move(line));
    };

    // The order process: starts sagas; its start is compensated if the saga rolls back.
    process orders{server, io, writer, "orders"};
    choreo::no_resource order_db;
    choreo::saga::participant order{orders.sagas, "order", order_db};
    order.starts<job_started>("place", [&](const job_started& e, choreo::saga::step_context&) {
        note("order " + std::to_string(e.id) + " cancelled");
    });
    // Its events leave for the payment process through a stream.
    stream_publisher publisher{writer};
    auto out = orders.bus.subscribe<job_started>(
        [&](const job_started& e, const choreo::envelope& env) { publisher.publish("app:jobs", e, env); },
        {.name = "to the payment process", .when = choreo::phase::after_commit});

    // The payment process: a step that takes job_started from the stream.
    process payments{server, io, writer, "payments"};
    connection payment_reader{io.executor(), reader_options(server)};
    stream_consumer_options consumer_options;
    consumer_options.stream = "app:jobs";
    consumer_options.group = "payment";
    consumer_options.consumer = "payment-1";
    consumer_options.block = 50ms;
    stream_consumer jobs{payment_reader, consumer_options};
    choreo::no_resource payment_db;
    choreo::saga::participant payment{payments.sagas, "payment", payment_db};
    payment.step_from<job_started>(
        [&](const std::string&, const auto& deliver) {
            jobs.on<job_started>([deliver](const job_started& e, const choreo::envelope& env) { deliver(e, env); });
        },
        "charge",
        [&](const job_started& e, choreo::saga::step_context& ctx) {
            if (!e.payable) throw std::runtime_error("card declined");
            ctx.hold("card:" + std::to_string(e.id));
            note("order " + std::to_string(e.id) + " charged");
            ctx.complete_saga();
        },
        [&](const job_started& e, choreo::saga::step_context&) {
            note("order " + std::to_string(e.id) + " refunded");
        });

    orders.bridge.start();
    payments.bridge.start();
    jobs.start();

    auto start = [&](std::int64_t id, bool payable) {
        auto unit = orders.bus.begin(order_db);
        auto key = order.start(unit, job_started{id, payable}, std::to_string(id));
        unit.commit();
        return std::string{key.view()};
    };
    auto paid = start(1, true);
    auto declined = start(2, false);

    REQUIRE(eventually([&] { return orders.store.status(paid) == choreo::saga::saga_status::completed; }));
    REQUIRE(eventually([&] { return orders.store.status(declined) == choreo::saga::saga_status::rolled_back; }));
    auto record = orders.store.get(declined);
    REQUIRE(record);
    CHECK(record->failed_step == "payment/charge");
    CHECK(record->reason == "card declined");
    CHECK(record->state_of("order/place") == choreo::saga::step_state::compensated);
    // The end of each saga reached the other process: payments ended the first (complete),
    // orders the second (its compensation was the last). The card marker is released by the
    // payment participant's saga_ended listener, which runs on the bus after the end arrived.
    REQUIRE(eventually([&] { return orders.bridge.received() >= 2 && payments.bridge.received() >= 1; }));
    CHECK(eventually([&] { return !payments.store.holder("card:1", std::chrono::system_clock::now()); }));

    jobs.stop();
    orders.bridge.stop();
    payments.bridge.stop();
    orders.sagas.drain();
    payments.sagas.drain();
    std::lock_guard lock{m};
    CHECK(std::count(log.begin(), log.end(), "order 1 charged") == 1);
    CHECK(std::count(log.begin(), log.end(), "order 2 cancelled") == 1); // compensated in the order process
    CHECK(std::count(log.begin(), log.end(), "order 1 cancelled") == 0);
    CHECK(std::count(log.begin(), log.end(), "order 2 charged") == 0);
    CHECK(orders.bridge.sent() >= 1);
    CHECK(payments.bridge.sent() >= 2);
}

TEST_CASE("a rollback crosses processes with its steps; one from an older version, without them, still reads") {
    choreo::durable::json_codec codec;
    choreo::saga::saga_rolled_back sent{"Job:1", "card declined", "payment/charge", {"order/place", "payment/charge"}};
    auto back = codec.decode<choreo::saga::saga_rolled_back>(codec.encode(sent));
    CHECK(back.key == sent.key);
    CHECK(back.reason == sent.reason);
    CHECK(back.failed_step == sent.failed_step);
    CHECK(back.steps == sent.steps);

    // Before the steps were carried: every participant reads the saga's record.
    auto old = codec.decode<choreo::saga::saga_rolled_back>(
        R"({"key":"Job:1","reason":"card declined","failed_step":"payment/charge"})");
    CHECK(old.failed_step == "payment/charge");
    CHECK(old.steps.empty());
    // A member a newer version adds is skipped.
    CHECK(codec
              .decode<choreo::saga::saga_rolled_back>(
                  R"({"key":"Job:1","reason":"r","failed_step":"","steps":[],"processes":["a"]})")
              .key == "Job:1");
    CHECK_THROWS_AS((void)codec.decode<choreo::saga::saga_rolled_back>(R"({"reason":"r","failed_step":""})"),
                    choreo::durable::codec_error);
    CHECK_THROWS_AS((void)codec.decode<choreo::saga::saga_rolled_back>(
                        R"({"key":"k","reason":"r","failed_step":"","steps":"order/place"})"),
                    choreo::durable::codec_error);
}
