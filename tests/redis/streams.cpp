// Events over Redis Streams against a redis-server of the test's own: the envelope's round
// trip, acknowledgement only after the handler, retries, dead letters for poison and
// malformed entries, entries of a crashed consumer taken over, trimming, and an outbox on
// SQLite relaying into a stream whose consumer has an inbox (each effect once).

#include <choreo/durable.hpp>
#include <choreo/redis/streams.hpp>
#include <choreo/sqlite.hpp>

#include "../core/support.hpp"
#include "../support/fault_log.hpp"
#include "../support/redis_server.hpp"
#include "../support/transport_contract.hpp"
#include "../support/wire_events.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace choreo::redis;
using namespace std::chrono_literals;
using test::eventually;
using test_events::order_paid;
using test_events::order_paid_named;
using test_events::order_paid_v2;

namespace {

// A redis-server, an io_context thread, and connections on it.
struct redis_fixture {
    test_support::redis_server server;
    test_support::io_thread io;
    connection writer{io.executor(), server.url()};

    connection_options options() const {
        auto o = parse_url(server.url());
        o.command_timeout = 2s;
        return o;
    }
    std::int64_t pending(const std::string& stream, const std::string& group) {
        return writer.command({"XPENDING", stream, group}).elements.at(0).as_integer();
    }
};

choreo::envelope sample_envelope(std::uint64_t n) {
    return {choreo::event_id{0xabc, n}, choreo::event_id{0xdef, n},
            choreo::correlation_key{"order:" + std::to_string(n)},
            std::chrono::system_clock::time_point{std::chrono::milliseconds{1'700'000'000'000 + n}}, "order_paid"};
}

// Entry n of saga `key`.
choreo::envelope keyed_envelope(std::uint64_t n, const std::string& key) {
    auto env = sample_envelope(n);
    env.key = choreo::correlation_key{key};
    return env;
}

stream_consumer_options consumer_options(std::string consumer = "c1") {
    stream_consumer_options o;
    o.stream = "orders";
    o.group = "platform";
    o.consumer = std::move(consumer);
    o.block = 50ms;
    o.retry_delay = 50ms;
    o.reclaim_idle = 300ms;
    o.max_deliveries = 3;
    return o;
}

// Redis Streams under the transport contract (../support/transport_contract.hpp).
struct redis_streams_transport {
    redis_fixture f;
    stream_publisher<> publisher{f.writer};
    connection reader{f.io.executor(), f.options()};
    std::chrono::milliseconds patience{10'000};

    void publish(const order_paid& e, const choreo::envelope& env) { publisher.publish("orders", e, env); }
    template <class Outbox>
    void carry(Outbox& outbox) {
        outbox.template subscribe<order_paid>(
            [this](const order_paid& e, const choreo::envelope& env) { publisher.publish("orders", e, env); },
            {.name = "to redis"});
    }
    auto read(transport_contract::dead_letter_hook dead) {
        auto o = consumer_options();
        if (dead) o.on_dead_letter = [dead](const std::string&, const std::string& reason) { dead(reason); };
        return std::make_unique<stream_consumer<>>(reader, std::move(o));
    }
    void settled() { CHECK(f.pending("orders", "platform") == 0); }
};

} // namespace

TEST_CASE("transport contract on Redis Streams: an event and its envelope make the round trip, acknowledged after the "
          "handler") {
    redis_streams_transport t;
    transport_contract::round_trip(t);
}

TEST_CASE("transport contract on Redis Streams: a failing handler gets the entry again, a poison entry goes to the "
          "dead letters") {
    redis_streams_transport t;
    transport_contract::retry_then_dead_letter(t);
    // The dead letter is an entry of orders:dead, with the reason first.
    auto dead = t.f.writer.command({"XRANGE", "orders:dead", "-", "+"});
    REQUIRE(dead.elements.size() == 1);
    auto& fields = dead.elements[0].elements[1].elements;
    REQUIRE(fields.size() >= 2);
    CHECK(fields[0].text == "reason");
    CHECK(fields[1].text.find("order 2 is poison") != std::string::npos);
}

TEST_CASE("transport contract on Redis Streams: an outbox relays into a stream; the consumer's inbox makes each effect "
          "happen once") {
    redis_streams_transport t;
    transport_contract::outbox_to_inbox_once(t);
}

TEST_CASE("malformed entries go to the dead letters with a reason, and the consumer keeps going") {
    redis_fixture f;
    auto good = choreo::event_type_name<order_paid>();
    auto add = [&](std::vector<std::string> fields) {
        std::vector<std::string> command{"XADD", "orders", "*"};
        command.insert(command.end(), fields.begin(), fields.end());
        f.writer.command(detail::views(command));
    };
    const std::string id(32, 'a');
    add({"garbage", "yes"}); // no envelope
    add({"v", "9", "type", std::string{good}, "schema", "1", "id", id, "causation", id, "key", "", "time", "1",
         "payload", "{}"});
    add({"v", "1", "type", std::string{good}, "schema", "1", "id", id, "causation", id, "key", "", "time", "1",
         "payload", R"({"order_id":1,"amo)"}); // truncated
    add({"v", "1", "type", "nobody::knows", "schema", "1", "id", id, "causation", id, "key", "", "time", "1", "payload",
         "{}"});
    stream_publisher{f.writer}.publish("orders", order_paid_v2{1}, sample_envelope(5)); // newer schema
    add({"v", "1", "type", std::string{good}, "schema", "1", "id", "not-hex", "causation", id, "key", "", "time", "1",
         "payload", "{}"});
    add({"v", "1", "type", std::string{good}, "schema", "1", "id", id, "causation", id, "key", "", "time", "1",
         "payload", R"({"order_id":1,"amount":2,"pad":")" + std::string(5'000, 'x') + "\"}"}); // oversized
    add({"v", "1", "type", std::string{good}, "schema", "1", "id", id, "causation", id, "key", "", "time",
         "12700000000000000", "payload", "{}"}); // past the clock's range (found by fuzzing)
    stream_publisher{f.writer}.publish("orders", order_paid{7, 700}, sample_envelope(7)); // fine

    connection reader{f.io.executor(), f.options()};
    auto options = consumer_options();
    options.max_payload = 4'096;
    std::vector<std::string> reasons;
    std::mutex m;
    options.on_dead_letter = [&](const std::string&, const std::string& reason) {
        std::lock_guard lock{m};
        reasons.push_back(reason);
    };
    stream_consumer consumer{reader, options};
    std::atomic<std::int64_t> got{0};
    consumer.on<order_paid>([&](const order_paid& e, const choreo::envelope&) { got = e.order_id; });
    consumer.on<order_paid_named>([&](const order_paid_named&, const choreo::envelope&) {});
    consumer.start();
    REQUIRE(eventually([&] { return consumer.dead_lettered() == 8 && consumer.handled() == 1; }));
    consumer.stop();
    CHECK(got == 7);
    std::lock_guard lock{m};
    REQUIRE(reasons.size() == 8);
    CHECK(reasons[0].find("lacks the field 'v'") != std::string::npos);
    CHECK(reasons[1].find("envelope version '9'") != std::string::npos);
    CHECK(reasons[2].find("cannot decode") != std::string::npos);
    CHECK(reasons[3].find("no handler for event type 'nobody::knows'") != std::string::npos);
    CHECK(reasons[4].find("schema version 2") != std::string::npos);
    CHECK(reasons[5].find("32 hexadecimal digits") != std::string::npos);
    CHECK(reasons[6].find("more than the 4096 allowed") != std::string::npos);
    CHECK(reasons[7].find("'time' is out of range") != std::string::npos);
    CHECK(f.pending("orders", "platform") == 0);
    CHECK(f.writer.command({"XLEN", "orders:dead"}).as_integer() == 8);
    test_support::record_fault("Redis Streams consumer", "eight kinds of malformed entry between good ones", "Redis", 8,
                               got == 7 && f.pending("orders", "platform") == 0,
                               "each dead-lettered with its reason, the consumer kept going");
}

TEST_CASE("the entries of a consumer that died are taken over after reclaim_idle") {
    redis_fixture f;
    stream_publisher publisher{f.writer};
    for (std::uint64_t n = 1; n <= 10; ++n)
        publisher.publish("orders", order_paid{static_cast<std::int64_t>(n), 1}, sample_envelope(n));
    // A consumer reads every entry and dies before acknowledging any.
    f.writer.command({"XGROUP", "CREATE", "orders", "platform", "0"});
    auto taken =
        f.writer.command({"XREADGROUP", "GROUP", "platform", "dead", "COUNT", "100", "STREAMS", "orders", ">"});
    REQUIRE(taken.elements.at(0).elements.at(1).elements.size() == 10);
    CHECK(f.pending("orders", "platform") == 10);

    connection reader{f.io.executor(), f.options()};
    stream_consumer survivor{reader, consumer_options("c2")};
    std::atomic<int> got{0};
    survivor.on<order_paid>([&](const order_paid&, const choreo::envelope&) { ++got; });
    survivor.start();
    REQUIRE(eventually([&] { return survivor.handled() == 10; }));
    survivor.stop();
    CHECK(got == 10);
    CHECK(f.pending("orders", "platform") == 0);
    test_support::record_fault("Redis Streams consumer", "a consumer died with entries pending", "Redis", 10,
                               got == 10 && f.pending("orders", "platform") == 0,
                               "its entries taken over after reclaim_idle, each handled");
}

TEST_CASE("the trimming policy keeps a stream bounded") {
    redis_fixture f;
    stream_publisher publisher{f.writer, {.max_length = 100, .approximate = false}};
    for (std::uint64_t n = 1; n <= 300; ++n)
        publisher.publish("orders", order_paid{static_cast<std::int64_t>(n), 1}, sample_envelope(n));
    CHECK(f.writer.command({"XLEN", "orders"}).as_integer() == 100);
    CHECK_THROWS_AS(stream_publisher(f.writer, {}, {}, 16).publish("orders", order_paid{1, 1}, sample_envelope(1)),
                    choreo::durable::codec_error);
}

TEST_CASE("a batch's acknowledgement goes with the next read: settled while the consumer runs, and at its stop") {
    redis_fixture f;
    stream_publisher publisher{f.writer};
    connection reader{f.io.executor(), f.options()};
    stream_consumer consumer{reader, consumer_options()};
    consumer.on<order_paid>([](const order_paid&, const choreo::envelope&) {});
    consumer.start();
    for (std::uint64_t n = 1; n <= 20; ++n) {
        publisher.publish("orders", order_paid{static_cast<std::int64_t>(n), 1}, sample_envelope(n));
        REQUIRE(eventually([&] { return consumer.handled() == n; }));
        // Settled without waiting for another entry: the XACK runs before the next read blocks.
        REQUIRE(eventually([&] { return f.pending("orders", "platform") == 0; }));
    }
    publisher.publish("orders", order_paid{21, 1}, sample_envelope(21));
    REQUIRE(eventually([&] { return consumer.handled() == 21; }));
    consumer.stop();
    CHECK(f.pending("orders", "platform") == 0);
    // One XACK per batch, each sent with a read: never more acknowledgements than entries.
    auto stats = f.writer.command({"INFO", "commandstats"}).as_string();
    auto at = stats.find("cmdstat_xack:calls=");
    REQUIRE(at != std::string::npos);
    CHECK(std::stoi(stats.substr(at + 19)) <= 21);
}

TEST_CASE("with concurrency, entries of different keys are handled at once") {
    redis_fixture f;
    stream_publisher publisher{f.writer};
    // Two keys in different lanes, each entry's handler waiting until another one runs:
    // one at a time, neither would ever see the other.
    std::vector<std::string> keys{"saga:0"};
    for (int i = 1; keys.size() < 2; ++i)
        if (auto key = "saga:" + std::to_string(i);
            choreo::durable::detail::lane_of(key, 4) != choreo::durable::detail::lane_of(keys[0], 4))
            keys.push_back(key);
    for (std::uint64_t n = 1; n <= 2; ++n)
        publisher.publish("orders", order_paid{static_cast<std::int64_t>(n), 1}, keyed_envelope(n, keys[n - 1]));
    connection reader{f.io.executor(), f.options()};
    auto options = consumer_options();
    options.concurrency = 4;
    stream_consumer consumer{reader, options};
    std::mutex m;
    std::condition_variable changed;
    int running = 0;
    int most = 0;
    consumer.on<order_paid>([&](const order_paid&, const choreo::envelope&) {
        std::unique_lock lock{m};
        most = std::max(most, ++running);
        changed.notify_all();
        changed.wait_for(lock, 2s, [&] { return most >= 2; });
        --running;
    });
    consumer.start();
    REQUIRE(eventually([&] { return consumer.handled() == 2; }));
    consumer.stop();
    CHECK(most == 2);
    CHECK(f.pending("orders", "platform") == 0);
}

TEST_CASE("with concurrency, one key's entries are handled one at a time and in order; a failing one is retried") {
    redis_fixture f;
    stream_publisher publisher{f.writer};
    constexpr int sagas = 7;
    constexpr std::uint64_t entries = 350;
    for (std::uint64_t n = 1; n <= entries; ++n)
        publisher.publish("orders", order_paid{static_cast<std::int64_t>(n), 1},
                          keyed_envelope(n, "saga:" + std::to_string(n % sagas)));
    connection reader{f.io.executor(), f.options()};
    auto options = consumer_options();
    options.concurrency = 3;
    options.batch = 64;
    stream_consumer consumer{reader, options};
    std::mutex m;
    std::map<std::string, std::vector<std::int64_t>> seen; // per key, the order ids in the order handled
    std::map<std::string, bool> busy;
    std::atomic<int> overlaps{0};
    std::atomic<bool> failed_once{false};
    consumer.on<order_paid>([&](const order_paid& e, const choreo::envelope& env) {
        const std::string key{env.key.view()};
        {
            std::lock_guard lock{m};
            if (std::exchange(busy[key], true)) ++overlaps;
        }
        std::this_thread::yield();
        std::lock_guard lock{m};
        busy[key] = false;
        if (e.order_id == 100 && !failed_once.exchange(true)) throw std::runtime_error("order 100 fails once");
        seen[key].push_back(e.order_id);
    });
    consumer.start();
    REQUIRE(eventually([&] { return consumer.handled() == entries; }));
    consumer.stop();
    CHECK(overlaps == 0);
    CHECK(f.pending("orders", "platform") == 0);
    std::lock_guard lock{m};
    REQUIRE(seen.size() == sagas);
    for (auto& [key, ids] : seen) {
        CHECK(ids.size() == entries / sagas);
        // In the stream's order, but for the entry that failed: delivered again after the others.
        std::vector<std::int64_t> without_retry;
        for (auto id : ids)
            if (id != 100) without_retry.push_back(id);
        CHECK(std::is_sorted(without_retry.begin(), without_retry.end()));
    }
}

TEST_CASE("a batch that takes longer than retry_delay is not delivered again") {
    redis_fixture f;
    stream_publisher publisher{f.writer};
    for (std::uint64_t n = 1; n <= 3; ++n)
        publisher.publish("orders", order_paid{static_cast<std::int64_t>(n), 1}, sample_envelope(n));
    connection reader{f.io.executor(), f.options()};
    stream_consumer consumer{reader, consumer_options()}; // retry_delay 50 ms
    std::atomic<int> runs{0};
    consumer.on<order_paid>([&](const order_paid&, const choreo::envelope&) {
        ++runs;
        std::this_thread::sleep_for(40ms); // a slow handler: the batch outlasts retry_delay
    });
    consumer.start();
    REQUIRE(eventually([&] { return consumer.handled() >= 3 && f.pending("orders", "platform") == 0; }));
    std::this_thread::sleep_for(200ms); // a redelivery would come within retry_delay and a batch
    consumer.stop();
    // Handled once each: the reclaim that follows the batch found them settled, not idle.
    CHECK(runs == 3);
    CHECK(consumer.handled() == 3);
}
