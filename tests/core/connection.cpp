// Connections: RAII unsubscription, also during dispatch and from other threads.
#include "support.hpp"

#include <doctest/doctest.h>

#include <atomic>

using namespace test;
using choreo::phase;

TEST_CASE("dropping a connection unsubscribes") {
    choreo::bus bus{{.threads = 1}};
    int calls = 0;
    {
        auto connection = bus.subscribe<order_created>([&](const order_created&) { ++calls; });
        CHECK(connection.connected());
        bus.publish(order_created{1});
    }
    bus.publish(order_created{2});
    CHECK(calls == 1);
    CHECK(bus.wiring().empty());
}

TEST_CASE("connections move; release keeps the listener for the life of the bus") {
    choreo::bus bus{{.threads = 1}};
    int calls = 0;
    choreo::connection kept;
    {
        auto connection = bus.subscribe<order_created>([&](const order_created&) { ++calls; });
        kept = std::move(connection);
        CHECK_FALSE(connection.connected());
    }
    bus.publish(order_created{1});
    CHECK(calls == 1);
    kept.release();
    CHECK_FALSE(kept.connected());
    bus.publish(order_created{2});
    CHECK(calls == 2);
    CHECK(bus.wiring().size() == 1);
}

TEST_CASE("moving a connection onto another disconnects the one it held") {
    choreo::bus bus{{.threads = 1}};
    int first = 0, second = 0;
    auto a = bus.subscribe<order_created>([&](const order_created&) { ++first; });
    auto b = bus.subscribe<order_created>([&](const order_created&) { ++second; });
    a = std::move(b);
    bus.publish(order_created{1});
    CHECK(first == 0);
    CHECK(second == 1);
}

TEST_CASE("a listener disconnected during a dispatch is not called by that dispatch") {
    choreo::bus bus{{.threads = 1}};
    std::vector<std::string> calls;
    choreo::connection victim;
    auto killer = bus.subscribe<order_created>([&](const order_created&) {
        calls.push_back("killer");
        victim.disconnect();
    });
    victim = bus.subscribe<order_created>([&](const order_created&) { calls.push_back("victim"); });
    bus.publish(order_created{1});
    bus.publish(order_created{2});
    CHECK(calls == std::vector<std::string>{"killer", "killer"});
}

TEST_CASE("a listener may disconnect itself, and subscribe others, while being dispatched") {
    choreo::bus bus{{.threads = 1}};
    int once_calls = 0, added_calls = 0;
    choreo::connection once, added;
    once = bus.subscribe<order_created>([&](const order_created&) {
        ++once_calls;
        once.disconnect();
        added = bus.subscribe<order_created>([&](const order_created&) { ++added_calls; });
    });
    bus.publish(order_created{1});
    CHECK(once_calls == 1);
    CHECK(added_calls == 0); // subscribed during the dispatch: from the next publication on
    bus.publish(order_created{2});
    CHECK(once_calls == 1);
    CHECK(added_calls == 1);
}

TEST_CASE("a transactional listener disconnected before commit does not run") {
    choreo::bus bus{{.threads = 1}};
    int calls = 0;
    auto listener = bus.subscribe<order_created>([&](const order_created&) { ++calls; }, {.when = phase::after_commit});
    auto unit = bus.begin();
    bus.publish(order_created{1});
    listener.disconnect();
    unit.commit();
    CHECK(calls == 0);
}

TEST_CASE("a connection may outlive its bus") {
    choreo::connection survivor;
    {
        choreo::bus bus{{.threads = 1}};
        survivor = bus.subscribe<order_created>([](const order_created&) {});
        CHECK(survivor.connected());
    }
    CHECK_FALSE(survivor.connected());
    CHECK_NOTHROW(survivor.disconnect());
}

TEST_CASE("subscribing and unsubscribing while other threads publish") {
    choreo::bus bus{{.threads = 2}};
    std::atomic<long> stable_calls{0};
    std::atomic<bool> stop{false};
    auto stable = bus.subscribe<order_created>([&](const order_created&) { ++stable_calls; });
    std::vector<std::thread> publishers;
    std::atomic<long> published{0};
    for (int t = 0; t < 3; ++t)
        publishers.emplace_back([&] {
            while (!stop) {
                bus.publish(order_created{1});
                ++published;
            }
        });
    std::atomic<long> churn_calls{0};
    for (int i = 0; i < 300; ++i) {
        auto temporary =
            bus.subscribe<order_created>([&](const order_created&) { ++churn_calls; }, {.order = i % 3 - 1});
        std::this_thread::yield();
    }
    stop = true;
    for (auto& p : publishers) p.join();
    CHECK(stable_calls.load() == published.load());
    CHECK(bus.wiring().size() == 1);
}
