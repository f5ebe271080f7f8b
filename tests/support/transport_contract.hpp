#pragma once
// The contract every transport of events between processes keeps, as scenarios that the
// Redis Streams and the Kafka tests both run: an event's envelope makes the round trip; a
// handler that throws gets the event again and a poison event goes to the dead letters
// with its reason; an outbox relaying into the transport, with an inbox on the consuming
// side, makes each committed event's effect happen once and a rolled-back one's never.
//
// A transport under test is a class with:
//   void publish(const order_paid&, const choreo::envelope&)  to its destination, waiting;
//   template <class Outbox> void carry(Outbox&)                subscribes the outbox's
//                                                              listener into the destination;
//   auto read(dead_letter_hook)                                a unique_ptr to an unstarted
//                                                              consumer of the destination, in a
//                                                              group of its own, 3 attempts;
//   void settled()                                             checks what the transport keeps
//                                                              (nothing left unacknowledged);
//   std::chrono::milliseconds patience                          how long its deliveries may take.

#include <choreo/durable.hpp>
#include <choreo/sqlite.hpp>

#include "../core/support.hpp"
#include "wire_events.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace transport_contract {

using test_events::order_paid;
using dead_letter_hook = std::function<void(const std::string& reason)>;

// An envelope whose ids are unique within the run (transports may share a broker).
inline choreo::envelope envelope_for(std::uint64_t n) {
    static std::atomic<std::uint64_t> run{1};
    auto unique = (run++ << 20) | n;
    return {choreo::event_id{0xabc, unique}, choreo::event_id{0xdef, unique},
            choreo::correlation_key{"order:" + std::to_string(n)},
            // Microseconds too: the envelope's time travels to the microsecond.
            std::chrono::system_clock::time_point{
                std::chrono::microseconds{1'700'000'000'000'123 + 1000 * static_cast<std::int64_t>(n)}},
            choreo::event_type_name<order_paid>()};
}

template <class Transport>
void round_trip(Transport& t) {
    std::vector<choreo::envelope> sent;
    for (std::uint64_t n = 1; n <= 3; ++n) {
        sent.push_back(envelope_for(n));
        t.publish(order_paid{static_cast<std::int64_t>(n), 100}, sent.back());
    }
    auto consumer = t.read({});
    std::mutex m;
    std::vector<std::pair<order_paid, choreo::envelope>> seen;
    std::vector<std::string> keys;
    consumer->template on<order_paid>([&](const order_paid& e, const choreo::envelope& env) {
        std::lock_guard lock{m};
        seen.emplace_back(e, env);
        keys.emplace_back(env.key.view());
    });
    consumer->start();
    REQUIRE(test::eventually([&] { return consumer->handled() == 3; }, t.patience));
    consumer->stop();
    std::lock_guard lock{m};
    REQUIRE(seen.size() == 3);
    // Events of different keys may arrive in any order (Kafka spreads keys over partitions).
    for (std::size_t i = 0; i < 3; ++i) {
        auto n = seen[i].first.order_id;
        REQUIRE(n >= 1);
        REQUIRE(n <= 3);
        const auto& expected = sent[static_cast<std::size_t>(n - 1)];
        CHECK(seen[i].second.id == expected.id);
        CHECK(seen[i].second.causation_id == expected.causation_id);
        CHECK(keys[i] == "order:" + std::to_string(n));
        CHECK(seen[i].second.time == expected.time);
    }
    CHECK(std::set<std::int64_t>{seen[0].first.order_id, seen[1].first.order_id, seen[2].first.order_id}.size() == 3);
    CHECK(consumer->dead_lettered() == 0);
    // The sender stamped its hand-over, so each record's hop counts in every stage.
    for (auto stage : choreo::durable::hop_latency::stages) {
        CAPTURE(choreo::durable::to_string(stage));
        CHECK(consumer->hops().of(stage).total() == 3);
    }
    t.settled();
}

template <class Transport>
void retry_then_dead_letter(Transport& t) {
    t.publish(order_paid{1, 100}, envelope_for(1)); // fails twice, then works
    t.publish(order_paid{2, 100}, envelope_for(2)); // always fails
    t.publish(order_paid{3, 100}, envelope_for(3)); // works
    std::mutex m;
    std::vector<std::string> reasons;
    auto consumer = t.read([&](const std::string& reason) {
        std::lock_guard lock{m};
        reasons.push_back(reason);
    });
    std::atomic<int> tries_of_1{0};
    std::atomic<int> tries_of_2{0};
    consumer->template on<order_paid>([&](const order_paid& e, const choreo::envelope&) {
        if (e.order_id == 1 && ++tries_of_1 <= 2) throw std::runtime_error("the platform is busy");
        if (e.order_id == 2) {
            ++tries_of_2;
            throw std::runtime_error("order 2 is poison");
        }
    });
    consumer->start();
    REQUIRE(test::eventually([&] { return consumer->handled() == 2 && consumer->dead_lettered() == 1; }, t.patience));
    consumer->stop();
    CHECK(tries_of_1 == 3);
    CHECK(tries_of_2 == 3); // its attempts
    std::lock_guard lock{m};
    REQUIRE(reasons.size() == 1);
    CHECK(reasons[0].find("3 times") != std::string::npos);
    CHECK(reasons[0].find("order 2 is poison") != std::string::npos);
    t.settled();
}

template <class Transport>
void outbox_to_inbox_once(Transport& t) {
    using namespace std::chrono_literals;
    choreo::bus bus{{.threads = 2}};
    choreo::sqlite::database orders{":memory:"};
    choreo::sqlite::database platform{":memory:"};
    platform.execute("CREATE TABLE received (order_id INTEGER PRIMARY KEY)");
    choreo::sqlite::outbox_store store{orders};
    choreo::sqlite::inbox_store inbox{platform};
    choreo::durable::outbox outbox{bus, store, {.poll_interval = 20ms}};
    t.carry(outbox);
    outbox.start();

    auto consumer = t.read({});
    std::atomic<int> effects{0};
    consumer->template on<order_paid>([&](const order_paid& e, const choreo::envelope& env) {
        auto unit = bus.begin(platform);
        if (!inbox.record("platform", env.id)) return; // seen before
        choreo::sqlite::statement insert{platform, "INSERT INTO received VALUES (?)"};
        insert.bind(e.order_id).run();
        unit.commit();
        ++effects;
    });
    consumer->start();

    for (std::int64_t n = 1; n <= 20; ++n) {
        auto unit = bus.begin(orders);
        unit.publish(order_paid{n, 10 * n});
        if (n % 5 == 0) continue; // rolled back: its event never leaves the context
        unit.commit();
    }
    REQUIRE(test::eventually([&] { return consumer->handled() == 16; }, t.patience));
    // A relay that crashed after the transport took the event but before recording the
    // delivery sends the row again: the event arrives twice, the effect happens once.
    auto again = envelope_for(99);
    t.publish(order_paid{99, 1}, again);
    t.publish(order_paid{99, 1}, again);
    REQUIRE(test::eventually([&] { return consumer->handled() == 18; }, t.patience));
    consumer->stop();
    outbox.stop();
    bus.drain();
    CHECK(effects == 17);
    CHECK(outbox.counts().delivered == 16);
    t.settled();
}

} // namespace transport_contract
