// Kafka's producer: events keep their envelope and per-key order across partitions, and
// records a broker refused at first are sent again.

#include "../support/fault_log.hpp"
#include "support.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace kafka_test;
using namespace choreo::kafka;
using namespace std::chrono_literals;
using test::eventually;
using test_events::order_paid_named;
using test_events::order_paid_v2;

TEST_CASE("kafka: events keep their envelope and, per saga key, their order across partitions") {
    REQUIRE(create_topic(client(), "orders.roundtrip", 4));
    CHECK_FALSE(create_topic(client(), "orders.roundtrip", 4)); // there already
    producer<> out{client(60s)};
    constexpr int keys = 10, per_key = 30;
    std::atomic<int> acknowledged{0}, refused{0}; // the records published without waiting
    auto first = envelope_for("OrderCreateStart:0");
    for (int i = 0; i < per_key; ++i)
        for (int k = 0; k < keys; ++k) {
            auto env = i == 0 && k == 0 ? first : envelope_for("OrderCreateStart:" + std::to_string(k));
            if (i % 2 == 0)
                out.publish("orders.roundtrip", order_paid{i, k}, env);
            else
                out.async_publish("orders.roundtrip", order_paid{i, k}, env,
                                  [&](std::exception_ptr error) { ++(error ? refused : acknowledged); });
        }
    REQUIRE(out.records().flush(60s));
    CHECK(refused == 0);
    CHECK(acknowledged == keys * per_key / 2);

    received_log log;
    std::optional<choreo::envelope> seen_first;
    std::mutex first_mutex;
    consumer<> in{reading("orders.roundtrip", "roundtrip")};
    CHECK_FALSE(in.lag()); // no partitions before it joins the group
    in.on<order_paid>([&](const order_paid& e, const choreo::envelope& env) {
        if (env.id == first.id) {
            std::lock_guard lock{first_mutex};
            seen_first = env;
        }
        log.take(e, env);
    });
    in.start();
    REQUIRE(eventually([&] { return log.unique() == keys * per_key; }, 60s));
    // Nothing left to handle on the member's partitions: what a settling shop asks.
    CHECK(eventually(
        [&] {
            auto left = in.lag();
            return left && *left == 0;
        },
        20s));
    in.stop();
    for (auto& [saga, ids] : log.by_key) {
        const std::string& key = saga; // CAPTURE's lambda cannot name a structured binding (Clang 14)
        CAPTURE(key);
        REQUIRE(ids.size() == per_key);
        for (int i = 0; i < per_key; ++i) CHECK(ids[static_cast<std::size_t>(i)] == i);
    }
    REQUIRE(seen_first);
    CHECK(seen_first->causation_id == first.causation_id);
    CHECK(seen_first->key.view() == "OrderCreateStart:0");
    CHECK(std::chrono::duration_cast<std::chrono::milliseconds>(seen_first->time - first.time).count() == 0);
    CHECK(in.dead_lettered() == 0);
}

// A broker keeps no producer state yet for a new producer on a partition, so it takes that
// producer's requests there in any order. On a topic just created, whose leadership the
// broker is still taking up, it answers a new producer's first request "not leader" and may
// accept the next: with several requests in flight, librdkafka then counted the refused
// records as acknowledged by the later success ("implicitly acked") and they were lost
// (1 to 3 of 400 records in 11 of 30 fresh topics here). One request in flight per broker
// closes that (docs/decisions/0028).
TEST_CASE("kafka: records a broker refused at first (a new topic's leader not ready) are sent again, not taken as "
          "acknowledged") {
    constexpr int topics = 20, per_topic = 200, partitions = 4;
    int refused_first = 0;
    bool all_kept = true;
    for (int t = 0; t < topics; ++t) {
        std::string topic = "orders.fresh." + std::to_string(t);
        CAPTURE(topic);
        REQUIRE(create_topic(client(), topic, partitions));
        auto options = client(60s);
        // One record per request and no lingering: a partition's requests follow each other
        // at once, as they would under load. The debug lines show the broker's refusals.
        options.settings = {{"linger.ms", "0"}, {"batch.num.messages", "1"}, {"debug", "msg"}};
        std::atomic<int> not_leader{0};
        options.log = [&](int, const std::string&, const std::string& message) {
            if (message.find("Not leader") != std::string::npos) ++not_leader;
        };
        std::atomic<int> acknowledged{0}, failed{0};
        {
            record_producer out{options};
            for (int i = 0; i < per_topic; ++i)
                out.send(topic, "saga:" + std::to_string(i % 40), std::to_string(i), {},
                         [&](std::exception_ptr error) { ++(error ? failed : acknowledged); });
            REQUIRE(out.flush(60s));
        }
        CHECK(failed == 0);
        auto kept = records_in(topic, partitions);
        CHECK(kept == acknowledged.load());
        all_kept = all_kept && kept == acknowledged && failed == 0;
        if (not_leader > 0) ++refused_first;
    }
    MESSAGE(refused_first << " of " << topics << " fresh topics refused a new producer's first records as not leader");
    test_support::record_fault("Kafka transport",
                               "a new topic's leader not ready: the broker refuses a new producer's first requests",
                               "Kafka", refused_first, all_kept, "every acknowledged record is in the topic");
}
