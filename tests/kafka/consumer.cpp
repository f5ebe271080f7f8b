// Kafka's consumer: the transport contract (round trip, retry then dead letter, outbox to
// inbox once), a topic created after its consumer started, retries and dead letters for
// poison and malformed records, a failing key that holds no other key, a rebalance mid-run,
// a broker killed and restarted.

#include "../support/fault_log.hpp"
#include "support.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace kafka_test;
using namespace choreo::kafka;
using namespace std::chrono_literals;
using test::eventually;
using test_events::order_paid;
using test_events::order_paid_named;
using test_events::order_paid_v2;

TEST_CASE("transport contract on Kafka: an event and its envelope make the round trip") {
    kafka_transport t{"roundtrip"};
    transport_contract::round_trip(t);
}

TEST_CASE(
    "transport contract on Kafka: a failing handler gets the record again, a poison record goes to the dead letters") {
    kafka_transport t{"poison"};
    transport_contract::retry_then_dead_letter(t);
}

TEST_CASE(
    "transport contract on Kafka: an outbox relays into a topic; the consumer's inbox makes each effect happen once") {
    kafka_transport t{"outbox"};
    transport_contract::outbox_to_inbox_once(t);
}

TEST_CASE("kafka: a consumer started before its topic exists reads the topic once it is created") {
    // A process may start before the one that creates the topics it reads.
    auto options = reading("orders.late", "late");
    options.client.timeout = 2s; // how long start() waits for the topic to appear
    received_log log;
    consumer<> in{options};
    in.on<order_paid>([&](const order_paid& e, const choreo::envelope& env) { log.take(e, env); });
    in.start();
    CHECK_FALSE(in.assigned());
    REQUIRE(create_topic(client(), "orders.late", 2));
    producer<> out{client(60s)};
    for (int i = 0; i < 5; ++i) out.publish("orders.late", order_paid{i, 7}, envelope_for("OrderCreateStart:late"));
    // Noticed at the consumer's next metadata refresh (10 s), not librdkafka's default 5 min.
    CHECK(eventually([&] { return log.unique() == 5; }, 60s));
    in.stop();
}

TEST_CASE("kafka: a failing handler is retried; poison and malformed records go to the dead letters") {
    REQUIRE(create_topic(client(), "orders.poison", 1));
    record_producer raw{client()};
    producer<> out{client()};
    auto env = envelope_for("OrderCreateStart:7");
    auto headers = envelope_headers(choreo::event_type_name<order_paid_named>(), 1, env);
    auto without = [&](const std::string& name) {
        auto h = headers;
        std::erase_if(h, [&](auto& x) { return x.name == name; });
        return h;
    };
    auto with = [&](const std::string& name, const std::string& value) {
        auto h = without(name);
        h.push_back({name, value});
        return h;
    };
    raw.send_and_wait("orders.poison", "k", "garbage without an envelope", {});
    raw.send_and_wait("orders.poison", "k", R"({"order_id":1})", without("time"));
    raw.send_and_wait("orders.poison", "k", R"({"order_id":1})", with("type", "no::such_event"));
    raw.send_and_wait("orders.poison", "k", R"({"order_id":1})", with("v", "9"));
    raw.send_and_wait("orders.poison", "k", R"({"order_id":1})", with("id", "not-an-id"));
    raw.send_and_wait("orders.poison", "k", std::string(5000, 'x'), headers);  // over max_payload
    raw.send_and_wait("orders.poison", "k", R"({"order_id":"one"})", headers); // the codec refuses it
    out.publish("orders.poison", order_paid_v2{3}, envelope_for("k"));         // another schema version
    out.publish("orders.poison", order_paid_named{100}, envelope_for("k"));    // fails twice, then passes
    out.publish("orders.poison", order_paid_named{200}, envelope_for("k"));    // fails every time
    out.publish("orders.poison", order_paid_named{300}, envelope_for("k"));    // refused as permanent
    out.publish("orders.poison", order_paid_named{400}, envelope_for("k"));    // fine

    std::mutex mutex;
    std::vector<std::string> reasons;
    std::vector<std::int64_t> handled;
    std::map<std::int64_t, int> attempts;
    auto options = reading("orders.poison", "poison");
    options.max_payload = 4096;
    options.on_dead_letter = [&](const std::string& record, const std::string& reason) {
        std::lock_guard lock{mutex};
        reasons.push_back(record + ": " + reason);
    };
    consumer<> in{options};
    in.on<order_paid_named>([&](const order_paid_named& e, const choreo::envelope&) {
        std::lock_guard lock{mutex};
        int n = ++attempts[e.order_id];
        if (e.order_id == 100 && n < 3) throw std::runtime_error("database busy");
        if (e.order_id == 200) throw std::runtime_error("always busy");
        if (e.order_id == 300) throw choreo::permanent_error("order 300 does not exist");
        handled.push_back(e.order_id);
    });
    in.start();
    bool reached = eventually(
        [&] {
            std::lock_guard lock{mutex};
            return !handled.empty() && handled.back() == 400;
        },
        60s);
    if (!reached) {
        std::lock_guard lock{mutex};
        for (auto& r : reasons) MESSAGE(r);
        MESSAGE("handled " << handled.size() << ", errors " << in.errors() << ", last: " << in.last_error());
    }
    REQUIRE(reached);
    in.stop();
    std::lock_guard lock{mutex};
    CHECK(handled == std::vector<std::int64_t>{100, 400});
    CHECK(attempts[100] == 3);
    CHECK(attempts[200] == 3);
    REQUIRE(reasons.size() == 10);
    auto has = [&](std::size_t i, std::string_view text) {
        CAPTURE(reasons[i]);
        CHECK(reasons[i].find(text) != std::string::npos);
    };
    has(0, "lacks the field 'v'");
    has(1, "lacks the field 'time'");
    has(2, "no handler for event type 'no::such_event'");
    has(3, "envelope version '9'");
    has(4, "not 32 hexadecimal digits");
    has(5, "more than the 4096 allowed");
    has(6, "order_id");
    has(7, "schema version 2");
    has(8, "failed 3 times: always busy");
    has(9, "order 300 does not exist");
    CHECK(in.dead_lettered() == 10);
    CHECK(in.handled() == 2);

    // The dead letters are records on orders.poison.dead, with the reason and the source.
    auto dead = read_topic("orders.poison.dead", 10);
    REQUIRE(dead.size() == 10);
    CHECK(dead[0].headers.at("dead.reason").find("lacks the field 'v'") != std::string::npos);
    CHECK(dead[0].headers.at("dead.topic") == "orders.poison");
    CHECK(dead[0].headers.at("dead.offset") == "0");
    CHECK(dead[0].value == "garbage without an envelope");
    CHECK(dead[9].headers.at("type") == choreo::event_type_name<order_paid_named>());
    test_support::record_fault("Kafka transport",
                               "garbage, truncated, unknown type, wrong versions, bad id, oversized, "
                               "undecodable, always failing and permanently refused records",
                               "Kafka", 10, reasons.size() == 10 && handled == std::vector<std::int64_t>{100, 400},
                               "each dead-lettered with its reason; the partition moved on to the next record");
}

TEST_CASE("kafka: a failing key waits alone: the partition's other keys go on, its own later records wait behind it") {
    REQUIRE(create_topic(client(), "orders.by_key", 1)); // one partition: every key shares it
    producer<> out{client()};
    // saga A's first event fails until the last of saga B's is handled: with the partition
    // held in place, that would never happen, and A1 would go to the dead letters.
    out.publish("orders.by_key", order_paid_named{101}, envelope_for("saga:A"));
    for (std::int64_t n = 201; n <= 203; ++n) out.publish("orders.by_key", order_paid_named{n}, envelope_for("saga:B"));
    out.publish("orders.by_key", order_paid_named{102}, envelope_for("saga:A"));
    out.publish("orders.by_key", order_paid_named{204}, envelope_for("saga:B"));
    auto options = reading("orders.by_key", "by_key");
    options.retry_delay = 20ms;
    options.max_attempts = 1'000;
    std::mutex mutex;
    std::vector<std::int64_t> handled;
    consumer<> in{options};
    in.on<order_paid_named>([&](const order_paid_named& e, const choreo::envelope&) {
        std::lock_guard lock{mutex};
        if (e.order_id == 101 && std::find(handled.begin(), handled.end(), 204) == handled.end())
            throw std::runtime_error("saga A's order row is locked");
        handled.push_back(e.order_id);
    });
    in.start();
    REQUIRE(eventually(
        [&] {
            std::lock_guard lock{mutex};
            return handled.size() == 6;
        },
        60s));
    // Everything done is stored: nothing is left for the group.
    CHECK(eventually([&] { return in.lag() == std::optional<std::int64_t>{0}; }, 30s));
    in.stop();
    std::lock_guard lock{mutex};
    CHECK(handled == std::vector<std::int64_t>{201, 202, 203, 204, 101, 102});
    CHECK(in.dead_lettered() == 0);
    test_support::record_fault("Kafka transport",
                               "a saga's record failing while other sagas' records follow it in "
                               "its partition",
                               "Kafka", 1, handled == std::vector<std::int64_t>{201, 202, 203, 204, 101, 102},
                               "the other saga's records went on; the failing one's later record waited behind it");
}

TEST_CASE("kafka: with concurrency, a partition's keys are handled at once, each key in order, a failing one retried") {
    REQUIRE(create_topic(client(), "orders.side_by_side", 1)); // one partition: every key shares it
    // Two keys in different lanes open the run, each one's handler waiting until the other
    // runs: handled one at a time, neither would ever see the other.
    std::vector<std::string> keys{"saga:0"};
    for (int i = 1; keys.size() < 2; ++i)
        if (auto key = "saga:" + std::to_string(i);
            choreo::durable::detail::lane_of(key, 3) != choreo::durable::detail::lane_of(keys[0], 3))
            keys.push_back(key);
    producer<> out{client()};
    out.publish("orders.side_by_side", order_paid{1, 1}, envelope_for(keys[0]));
    out.publish("orders.side_by_side", order_paid{2, 1}, envelope_for(keys[1]));
    constexpr std::int64_t records = 120;
    for (std::int64_t n = 3; n <= records; ++n)
        out.publish("orders.side_by_side", order_paid{n, 1}, envelope_for("saga:" + std::to_string(n % 5)));
    auto options = reading("orders.side_by_side", "side_by_side");
    options.concurrency = 3;
    options.retry_delay = 20ms;
    std::mutex m;
    std::condition_variable changed;
    int running = 0;
    int most = 0;
    std::map<std::string, bool> busy;
    int overlaps = 0;
    std::map<std::string, std::vector<std::int64_t>> seen;
    bool failed_once = false;
    consumer<> in{options};
    in.on<order_paid>([&](const order_paid& e, const choreo::envelope& env) {
        const std::string key{env.key.view()};
        std::unique_lock lock{m};
        if (std::exchange(busy[key], true)) ++overlaps;
        most = std::max(most, ++running);
        changed.notify_all();
        if (e.order_id <= 2) changed.wait_for(lock, 5s, [&] { return most >= 2; });
        --running;
        busy[key] = false;
        if (e.order_id == 60 && !std::exchange(failed_once, true)) throw std::runtime_error("order 60 fails once");
        seen[key].push_back(e.order_id);
    });
    in.start();
    REQUIRE(eventually([&] { return in.handled() == records; }, 60s));
    CHECK(eventually([&] { return in.lag() == std::optional<std::int64_t>{0}; }, 30s));
    in.stop();
    std::lock_guard lock{m};
    CHECK(most >= 2);
    CHECK(overlaps == 0);
    CHECK(in.dead_lettered() == 0);
    for (auto& [key, ids] : seen) CHECK(std::is_sorted(ids.begin(), ids.end())); // 60's key waited for it
}

TEST_CASE("kafka: a partition's offset to commit is its oldest record not done; keys wait in lanes until due") {
    using choreo::kafka::detail::partition_progress;
    partition_progress p;
    for (std::int64_t o = 10; o < 15; ++o) p.taken(o);
    CHECK(p.done(11) == std::nullopt); // 10 is not done
    CHECK(p.done(10) == std::optional<std::int64_t>{12});
    CHECK(p.done(13) == std::nullopt);
    CHECK(p.done(12) == std::optional<std::int64_t>{14});
    CHECK(p.done(14) == std::optional<std::int64_t>{15});
    CHECK(p.idle());

    using lanes_type = choreo::kafka::detail::key_lanes<int>;
    using choreo::kafka::detail::lane;
    using choreo::kafka::detail::lane_id;
    lanes_type lanes;
    auto now = lanes_type::clock::now();
    CHECK(lanes.earliest() == lanes_type::clock::time_point::max());
    lanes.put({{"t", 0}, "a"}, lane<int>{{1, 2}, 1, now + 1s});
    lanes.put({{"t", 0}, "b"}, lane<int>{{3}, 2, now + 2s});
    lanes.put({{"t", 1}, "a"}, lane<int>{{4}, 1, now + 3s});
    CHECK(lanes.earliest() == now + 1s);
    REQUIRE(lanes.find({{"t", 0}, "a"}));
    lanes.find({{"t", 0}, "a"})->records.push_back(5);
    auto due = lanes.take_due(now + 2s);
    REQUIRE(due.size() == 2);
    CHECK(due.begin()->second.records == std::deque<int>{1, 2, 5});
    CHECK(lanes.earliest() == now + 3s);
    lanes.drop_unless([](const choreo::kafka::detail::partition_id& p) { return p.partition != 1; });
    CHECK(lanes.empty());
}

TEST_CASE("kafka: stop() ends a retry's delay at once; the record is not stored, so the next member gets it") {
    REQUIRE(create_topic(client(), "orders.stop_in_retry", 1));
    producer<> out{client()};
    out.publish("orders.stop_in_retry", order_paid_named{1}, envelope_for("k"));
    auto options = reading("orders.stop_in_retry", "stop_in_retry");
    options.retry_delay = std::chrono::minutes{10}; // the old sleep held stop() this long
    std::atomic<int> attempts{0};
    {
        consumer<> failing{options};
        failing.on<order_paid_named>([&](const order_paid_named&, const choreo::envelope&) {
            ++attempts;
            throw std::runtime_error("database busy");
        });
        failing.start();
        REQUIRE(eventually([&] { return attempts.load() == 1; }, 60s));
        failing.stop(); // returns, rather than after the ten minutes
        CHECK(failing.handled() == 0);
        CHECK(failing.dead_lettered() == 0);
    }
    consumer<> next{options};
    std::atomic<int> handled{0};
    next.on<order_paid_named>([&](const order_paid_named& e, const choreo::envelope&) {
        if (e.order_id == 1) ++handled;
    });
    next.start();
    CHECK(eventually([&] { return handled.load() == 1; }, 60s));
    next.stop();
    CHECK(attempts.load() == 1);
}

TEST_CASE("kafka: a second member joining mid-run (a rebalance) and a member stopped and replaced lose nothing") {
    REQUIRE(create_topic(client(), "orders.rebalance", 4));
    // A record is acknowledged or reported failed within the producer's timeout: generous
    // here, where the broker shares two cores with the other tests.
    producer<> out{client(60s)};
    constexpr int total = 2000, keys = 40;
    std::atomic<int> acknowledged{0}, refused{0};
    std::thread writer{[&] {
        for (int i = 0; i < total; ++i) {
            out.async_publish("orders.rebalance", order_paid{i / keys, i % keys},
                              envelope_for("saga:" + std::to_string(i % keys)),
                              [&](std::exception_ptr error) { ++(error ? refused : acknowledged); });
            if (i % 100 == 0) std::this_thread::sleep_for(20ms); // a run that lasts long enough to be interrupted
        }
    }};
    received_log log;
    auto member = [&] {
        auto c = std::make_unique<consumer<>>(reading("orders.rebalance", "rebalance"));
        c->on<order_paid>([&](const order_paid& e, const choreo::envelope& env) { log.take(e, env); });
        c->start();
        return c;
    };
    auto first = member();
    REQUIRE(eventually([&] { return log.unique() > 200; }, 60s));
    auto second = member(); // the group rebalances: partitions move, offsets stored so far are committed
    REQUIRE(eventually([&] { return log.unique() > 800; }, 60s));
    first->stop(); // leaves the group: its partitions go to the second
    first.reset();
    auto third = member();
    writer.join();
    REQUIRE(out.records().flush(60s));
    CHECK(refused == 0);
    CHECK(acknowledged == total);
    bool all = eventually([&] { return log.unique() == total; }, 90s);
    if (!all) {
        MESSAGE("applied " << log.unique() << " of " << total << "; last errors: " << second->last_error());
        std::lock_guard lock{log.mutex};
        auto records = read_topic("orders.rebalance", total + 10);
        MESSAGE("the topic holds " << records.size() << " records");
        std::set<std::string> present;
        for (auto& r : records) present.insert(r.value);
        for (auto& [key, ids] : log.by_key)
            for (std::int64_t n = 0; n < total / keys; ++n)
                if (std::find(ids.begin(), ids.end(), n) == ids.end())
                    MESSAGE(key << " order " << n
                                << std::string{present.count("{\"order_id\":" + std::to_string(n) +
                                                             ",\"amount\":" + key.substr(5) + "}")
                                                   ? " is in the topic"
                                                   : " is not in the topic"});
    }
    CHECK(all);
    second->stop();
    third->stop();
    // Per saga key the effects happened in publishing order, each once.
    std::lock_guard lock{log.mutex};
    for (auto& [saga, ids] : log.by_key) {
        const std::string& key = saga; // CAPTURE's lambda cannot name a structured binding (Clang 14)
        CAPTURE(key);
        CHECK(ids.size() == total / keys);
        CHECK(std::is_sorted(ids.begin(), ids.end()));
    }
    MESSAGE("deliveries " << log.deliveries << " for " << total
                          << " events (redelivered after the rebalances: " << log.deliveries - total << ")");
    test_support::record_fault("Kafka transport",
                               "a consumer group rebalanced twice mid-run (a member joins, one leaves)", "Kafka", 2,
                               all, "every event applied once, per key in order (the inbox absorbs redeliveries)");
}

TEST_CASE("kafka: the broker killed (SIGKILL) mid-run and restarted: what it acknowledged is consumed") {
    test_support::kafka_broker own;
    auto options = client_options::from_url(own.url());
    options.timeout = 30s;
    REQUIRE(create_topic(options, "orders.restart", 2));
    producer<> out{options};
    std::atomic<int> acknowledged{0}, failed{0};
    std::mutex mutex;
    std::set<std::int64_t> acked_ids;
    auto send = [&](int from, int to) {
        for (int i = from; i < to; ++i)
            out.async_publish("orders.restart", order_paid{i, 1}, envelope_for("saga:" + std::to_string(i % 7)),
                              [&, i](std::exception_ptr error) {
                                  if (error) {
                                      ++failed;
                                      return;
                                  }
                                  std::lock_guard lock{mutex};
                                  acked_ids.insert(i);
                                  ++acknowledged;
                              });
    };
    send(0, 300);
    REQUIRE(out.records().flush(30s));
    own.stop();     // SIGKILL
    send(300, 400); // queued while the broker is away; librdkafka retries them
    std::this_thread::sleep_for(1s);
    own.start();
    REQUIRE(out.records().flush(60s));
    CHECK(failed == 0);
    CHECK(acknowledged == 400);

    auto reader_options = consumer_options{};
    reader_options.client = options;
    reader_options.topics = {"orders.restart"};
    reader_options.group = "after-restart";
    consumer<> in{reader_options};
    std::set<std::int64_t> seen;
    in.on<order_paid>([&](const order_paid& e, const choreo::envelope&) {
        std::lock_guard lock{mutex};
        seen.insert(e.order_id);
    });
    in.start();
    bool all = eventually(
        [&] {
            std::lock_guard lock{mutex};
            return seen.size() >= acked_ids.size();
        },
        60s);
    in.stop();
    std::lock_guard lock{mutex};
    CHECK(all);
    CHECK(seen == acked_ids);
    test_support::record_fault(
        "Kafka transport", "the broker SIGKILLed mid-run and restarted", "Kafka", 1,
        all && seen == acked_ids && failed == 0,
        "every record the broker acknowledged is consumed; those sent meanwhile are delivered after");
}
