// Subscribing, immediate dispatch, envelopes, no-transaction policies, wiring.
#include "support.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <set>
#include <thread>

using namespace test;
using choreo::phase;

TEST_CASE("immediate listeners run at publish, in order, ties in registration order") {
    choreo::bus bus{{.threads = 1}};
    std::vector<std::string> calls;
    auto late = bus.subscribe<order_created>([&](const order_created&) { calls.push_back("late"); }, {.order = 10});
    auto first = bus.subscribe<order_created>([&](const order_created&) { calls.push_back("first"); }, {.order = -5});
    auto tie_a = bus.subscribe<order_created>([&](const order_created&) { calls.push_back("a"); });
    auto tie_b = bus.subscribe<order_created>([&](const order_created&) { calls.push_back("b"); });
    auto other = bus.subscribe<stock_deducted>([&](const stock_deducted&) { calls.push_back("other type"); });
    bus.publish(order_created{1});
    CHECK(calls == std::vector<std::string>{"first", "a", "b", "late"});
}

TEST_CASE("a listener may take the event, the envelope, or the delivery info") {
    choreo::bus bus{{.threads = 1}};
    int plain = 0;
    std::string type;
    choreo::phase seen_phase = phase::after_commit;
    unsigned attempt = 0;
    auto a = bus.subscribe<order_created>([&](const order_created& e) { plain = e.id; });
    auto b = bus.subscribe<order_created>(
        [&](const order_created&, const choreo::envelope& env) { type = std::string{env.type_name}; });
    auto c = bus.subscribe<order_created>([&](const order_created&, const choreo::delivery_info& info) {
        seen_phase = info.when();
        attempt = info.attempt();
    });
    bus.publish(order_created{7});
    CHECK(plain == 7);
    CHECK(type == "test::order_created");
    CHECK(seen_phase == phase::immediate);
    CHECK(attempt == 1);
}

TEST_CASE("an event type name is the qualified C++ name unless the struct names itself") {
    CHECK(choreo::event_type_name<order_created>() == "test::order_created");
    CHECK(choreo::event_type_name<named_event>() == "NamedEvent");
}

TEST_CASE("an exception in an immediate listener reaches the publisher and stops the rest") {
    choreo::bus bus{{.threads = 1}};
    bool after = false;
    auto thrower = bus.subscribe<order_created>([](const order_created&) { throw std::logic_error("bad order"); });
    auto later = bus.subscribe<order_created>([&](const order_created&) { after = true; });
    CHECK_THROWS_WITH_AS(bus.publish(order_created{1}), "bad order", std::logic_error);
    CHECK_FALSE(after);
}

TEST_CASE("publishing an event nobody listens to does nothing") {
    choreo::bus bus{{.threads = 1}};
    CHECK_NOTHROW(bus.publish(coupon_used{1}));
    recording_resource resource{nullptr};
    journal log;
    resource.log = &log;
    auto unit = bus.begin(resource);
    CHECK_NOTHROW(bus.publish(coupon_used{1}));
    unit.commit();
    CHECK(log.entries() == std::vector<std::string>{"begin", "commit"});
}

TEST_CASE("envelopes: unique ids, causation from the event being handled, inherited and explicit keys") {
    choreo::bus bus{{.threads = 1}};
    choreo::envelope first, second, third;
    auto on_order = bus.subscribe<order_created>([&](const order_created& e, const choreo::envelope& env) {
        first = env;
        bus.publish(stock_deducted{e.id});
    });
    auto on_stock = bus.subscribe<stock_deducted>([&](const stock_deducted& e, const choreo::envelope& env) {
        second = env;
        bus.publish(coupon_used{e.id}, choreo::correlation_key{"explicit"});
    });
    auto on_coupon = bus.subscribe<coupon_used>([&](const coupon_used&, const choreo::envelope& env) { third = env; });

    auto before = std::chrono::system_clock::now();
    bus.publish(order_created{3}, choreo::correlation_key{"OrderCreated:3"});
    CHECK_FALSE(first.id.is_nil());
    CHECK(first.causation_id.is_nil());
    CHECK(first.key.view() == "OrderCreated:3");
    CHECK(first.time >= before);
    CHECK(second.causation_id == first.id);
    CHECK(second.key.view() == "OrderCreated:3");
    CHECK(second.id != first.id);
    CHECK(third.causation_id == second.id);
    CHECK(third.key.view() == "explicit");
    CHECK(first.id.to_string().size() == 32);
}

TEST_CASE("the envelope of an immediately dispatched event is built once and shared by its listeners") {
    choreo::bus bus{{.threads = 1}};
    std::set<std::string> ids;
    for (int i = 0; i < 3; ++i)
        bus.subscribe<order_created>(
               [&](const order_created&, const choreo::envelope& env) { ids.insert(env.id.to_string()); })
            .release();
    bus.publish(order_created{1});
    CHECK(ids.size() == 1);
    bus.publish(order_created{2});
    CHECK(ids.size() == 2);
}

TEST_CASE("impossible subscriptions are refused with a clear error") {
    choreo::bus bus{{.threads = 1}};
    auto noop = [](const order_created&) {};
    using choreo::delivery;
    CHECK_THROWS_WITH_AS((void)bus.subscribe<order_created>(
                             noop, {.name = "x", .when = phase::before_commit, .mode = delivery::asynchronous}),
                         doctest::Contains("cannot be asynchronous"), choreo::usage_error);
    CHECK_THROWS_WITH_AS((void)bus.subscribe<order_created>(noop, {.order_by = choreo::ordering::per_key}),
                         doctest::Contains("asynchronous listeners only"), choreo::usage_error);
    CHECK_THROWS_WITH_AS((void)bus.subscribe<order_created>(noop, {.executor = bus.executor()}),
                         doctest::Contains("asynchronous listeners only"), choreo::usage_error);
    CHECK_THROWS_WITH_AS(
        (void)bus.subscribe<order_created>(noop, {.when = phase::before_commit, .retry = {.immediate_retries = 1}}),
        doctest::Contains("not retried"), choreo::usage_error);
    CHECK_THROWS_WITH_AS(
        (void)bus.subscribe<order_created>(noop, {.when = phase::after_commit, .retry = {.delayed_retries = 1}}),
        doctest::Contains("delayed retries need an asynchronous listener"), choreo::usage_error);
    CHECK_THROWS_WITH_AS(
        (void)bus.subscribe<order_created>(noop, {.without_transaction = choreo::no_transaction_policy::run_now}),
        doctest::Contains("transactional phases only"), choreo::usage_error);
    CHECK(bus.wiring().empty());
}

TEST_CASE("no unit of work: the policy error throws before any listener runs") {
    choreo::bus bus{{.threads = 1}};
    bool immediate_ran = false;
    auto immediate = bus.subscribe<order_created>([&](const order_created&) { immediate_ran = true; });
    auto strict =
        bus.subscribe<order_created>([](const order_created&) {}, {.name = "strict", .when = phase::after_commit});
    CHECK_THROWS_WITH_AS(bus.publish(order_created{1}),
                         doctest::Contains("listener 'strict' (after_commit) requires one"),
                         choreo::no_transaction_error);
    CHECK_FALSE(immediate_ran);
}

TEST_CASE("no unit of work: run_now runs the transactional phases at once, skip_with_warning reports") {
    incidents seen;
    choreo::bus bus{{.threads = 1, .on_incident = seen.handler()}};
    std::vector<std::string> calls;
    using choreo::no_transaction_policy;
    auto before = bus.subscribe<order_created>(
        [&](const order_created&) {
            calls.push_back("before_commit");
            bus.publish(stock_deducted{1});
        },
        {.when = phase::before_commit, .without_transaction = no_transaction_policy::run_now});
    auto chained = bus.subscribe<stock_deducted>(
        [&](const stock_deducted&) { calls.push_back("chained"); },
        {.when = phase::before_commit, .without_transaction = no_transaction_policy::run_now});
    auto after = bus.subscribe<order_created>(
        [&](const order_created&) { calls.push_back("after_commit"); },
        {.when = phase::after_commit, .without_transaction = no_transaction_policy::run_now});
    auto done = bus.subscribe<order_created>(
        [&](const order_created&, const choreo::delivery_info& info) {
            calls.push_back(std::string{"after_completion:"} + std::string{choreo::to_string(info.outcome())});
        },
        {.when = phase::after_completion, .without_transaction = no_transaction_policy::run_now});
    auto skipped = bus.subscribe<order_created>([&](const order_created&) { calls.push_back("skipped ran!"); },
                                                {.name = "audit",
                                                 .when = phase::after_commit,
                                                 .without_transaction = no_transaction_policy::skip_with_warning});
    bus.publish(order_created{1});
    CHECK(calls == std::vector<std::string>{"before_commit", "chained", "after_commit", "after_completion:committed"});
    REQUIRE(seen.count(choreo::incident_kind::listener_skipped) == 1);
    CHECK(seen.all().front().listener == "audit");
}

TEST_CASE("no unit of work: a run_now before_commit failure reaches the publisher and runs after_rollback") {
    choreo::bus bus{{.threads = 1}};
    std::vector<std::string> calls;
    using choreo::no_transaction_policy;
    auto before = bus.subscribe<order_created>(
        [](const order_created&) { throw std::runtime_error("no stock"); },
        {.when = phase::before_commit, .without_transaction = no_transaction_policy::run_now});
    auto rolled = bus.subscribe<order_created>(
        [&](const order_created&) { calls.push_back("after_rollback"); },
        {.when = phase::after_rollback, .without_transaction = no_transaction_policy::run_now});
    CHECK_THROWS_WITH(bus.publish(order_created{1}), "no stock");
    CHECK(calls == std::vector<std::string>{"after_rollback"});
    // With nothing failing, the event's unit of its own commits: after_rollback does not run
    // (unlike Spring's fallbackExecution, which runs an AFTER_ROLLBACK listener regardless).
    before.disconnect();
    calls.clear();
    bus.publish(order_created{2});
    CHECK(calls.empty());
}

TEST_CASE(
    "drain() from an immediate listener on the publishing thread waits like any caller; from a commit it is refused") {
    choreo::bus bus{{.threads = 1}};
    std::atomic<int> delivered{0};
    auto later = bus.subscribe<stock_deducted>([&](const stock_deducted&) { ++delivered; },
                                               {.when = phase::after_commit, .mode = choreo::delivery::asynchronous});
    auto immediate = bus.subscribe<order_created>([&](const order_created&) { bus.drain(); });
    {
        auto unit = bus.begin();
        bus.publish(stock_deducted{1});
        unit.commit();
        bus.publish(order_created{1}); // drains: the job above has run when it returns
        CHECK(delivered == 1);
    }
    auto in_commit =
        bus.subscribe<coupon_used>([&](const coupon_used&) { bus.drain(); }, {.when = phase::before_commit});
    auto unit = bus.begin();
    bus.publish(coupon_used{1});
    CHECK_THROWS_WITH_AS(unit.commit(), doctest::Contains("would wait for itself"), choreo::usage_error);
}

TEST_CASE("wiring lists every live registration with its phase, mode and order") {
    choreo::bus bus{{.threads = 1}};
    auto a = bus.subscribe<order_created>([](const order_created&) {},
                                          {.name = "deduct stock", .when = phase::before_commit, .order = 2});
    auto b = bus.subscribe<order_created>([](const order_created&) {},
                                          {.name = "use coupon", .when = phase::before_commit, .order = 1});
    auto c = bus.subscribe<order_completed>([](const order_completed&) {}, {.name = "data platform",
                                                                            .when = phase::after_commit,
                                                                            .mode = choreo::delivery::asynchronous,
                                                                            .order_by = choreo::ordering::per_key});
    auto unnamed = bus.subscribe<order_completed>([](const order_completed&) {});
    auto wiring = bus.wiring();
    REQUIRE(wiring.size() == 4);
    CHECK(wiring[0].listener == "use coupon");
    CHECK(wiring[1].listener == "deduct stock");
    CHECK(wiring[1].event_type == "test::order_created");
    CHECK(wiring[2].listener.starts_with("test::order_completed#"));
    CHECK(wiring[2].when == phase::immediate);
    CHECK(wiring[3].listener == "data platform");
    CHECK(wiring[3].mode == choreo::delivery::asynchronous);
    CHECK(wiring[3].order_by == choreo::ordering::per_key);
    b.disconnect();
    CHECK(bus.wiring().size() == 3);
}

TEST_CASE("many threads publishing at once: every event reaches every listener once") {
    choreo::bus bus{{.threads = 2}};
    std::atomic<long> immediate{0}, committed{0};
    auto a = bus.subscribe<order_created>([&](const order_created& e) { immediate += e.id; });
    auto b = bus.subscribe<order_created>([&](const order_created& e) { committed += e.id; },
                                          {.when = phase::after_commit, .mode = choreo::delivery::asynchronous});
    constexpr int threads = 8, per_thread = 2000;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t)
        workers.emplace_back([&] {
            for (int i = 1; i <= per_thread; ++i) {
                auto unit = bus.begin();
                bus.publish(order_created{i});
                unit.commit();
            }
        });
    for (auto& w : workers) w.join();
    bus.drain();
    long expected = long{threads} * per_thread * (per_thread + 1) / 2;
    CHECK(immediate.load() == expected);
    CHECK(committed.load() == expected);
}

namespace {
struct base_event {
    int id = 0;
};
struct derived_event : base_event {};
} // namespace

TEST_CASE("dispatch matches the exact type: a listener of a base type never sees a derived event") {
    choreo::bus bus{{.threads = 1}};
    int base_calls = 0, derived_calls = 0;
    auto base = bus.subscribe<base_event>([&](const base_event&) { ++base_calls; });
    auto derived = bus.subscribe<derived_event>([&](const derived_event&) { ++derived_calls; });
    bus.publish(derived_event{});
    CHECK(base_calls == 0);
    CHECK(derived_calls == 1);
    bus.publish(base_event{});
    CHECK(base_calls == 1);
}
