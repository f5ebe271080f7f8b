// The phase contract (docs/phases.md), line by line.
#include "support.hpp"

#include <doctest/doctest.h>

using namespace test;
using choreo::phase;
using strings = std::vector<std::string>;

namespace {

// Subscribes one listener per transactional phase that writes "<phase>:<event>" to the journal.
template <class E>
std::vector<choreo::connection> trace_phases(choreo::bus& bus, journal& log, const std::string& label) {
    std::vector<choreo::connection> out;
    for (phase p : {phase::immediate, phase::before_commit, phase::after_commit, phase::after_rollback,
                    phase::after_completion}) {
        out.push_back(bus.subscribe<E>(
            [&log, label](const E&, const choreo::delivery_info& info) {
                std::string entry = std::string{choreo::to_string(info.when())} + ":" + label;
                if (info.when() == phase::after_completion)
                    entry += std::string{"("} + std::string{choreo::to_string(info.outcome())} + ")";
                log.add(entry);
            },
            {.when = p}));
    }
    return out;
}

} // namespace

TEST_CASE("commit: immediate at publish, before_commit before the resource commits, then after_commit and "
          "after_completion") {
    choreo::bus bus{{.threads = 1}};
    journal log;
    recording_resource resource{&log};
    auto listeners = trace_phases<order_created>(bus, log, "order");
    auto unit = bus.begin(resource);
    CHECK(bus.current_unit() == &unit);
    bus.publish(order_created{1});
    log.add("published");
    unit.commit();
    CHECK(unit.state() == choreo::unit_state::committed);
    CHECK(bus.current_unit() == nullptr);
    CHECK(log.entries() == strings{"begin", "immediate:order", "published", "before_commit:order", "commit",
                                   "after_commit:order", "after_completion:order(committed)"});
}

TEST_CASE("rollback: after_rollback and after_completion see the events of the unit") {
    choreo::bus bus{{.threads = 1}};
    journal log;
    recording_resource resource{&log};
    auto listeners = trace_phases<order_created>(bus, log, "order");
    auto unit = bus.begin(resource);
    bus.publish(order_created{1});
    unit.rollback();
    CHECK(unit.state() == choreo::unit_state::rolled_back);
    CHECK(log.entries() == strings{"begin", "immediate:order", "rollback", "after_rollback:order",
                                   "after_completion:order(rolled_back)"});
}

TEST_CASE("a unit of work destroyed without commit rolls back") {
    choreo::bus bus{{.threads = 1}};
    journal log;
    recording_resource resource{&log};
    auto listeners = trace_phases<order_created>(bus, log, "order");
    {
        auto unit = bus.begin(resource);
        bus.publish(order_created{1});
    }
    CHECK(log.entries() == strings{"begin", "immediate:order", "rollback", "after_rollback:order",
                                   "after_completion:order(rolled_back)"});
    CHECK(bus.current_unit() == nullptr);
}

TEST_CASE("events published by before_commit listeners join the same commit pass, hop after hop") {
    choreo::bus bus{{.threads = 1}};
    journal log;
    recording_resource resource{&log};
    auto created = bus.subscribe<order_created>(
        [&](const order_created& e) {
            log.add("deduct stock");
            bus.publish(stock_deducted{e.id});
        },
        {.when = phase::before_commit});
    auto deducted = bus.subscribe<stock_deducted>(
        [&](const stock_deducted& e) {
            log.add("use coupon");
            bus.publish(coupon_used{e.id});
        },
        {.when = phase::before_commit});
    auto used = bus.subscribe<coupon_used>(
        [&](const coupon_used& e) {
            log.add("complete order");
            bus.publish(order_completed{e.id});
        },
        {.when = phase::before_commit});
    auto completed = bus.subscribe<order_completed>([&](const order_completed&) { log.add("after_commit: completed"); },
                                                    {.when = phase::after_commit});
    auto unit = bus.begin(resource);
    bus.publish(order_created{1});
    unit.commit();
    CHECK(log.entries() ==
          strings{"begin", "deduct stock", "use coupon", "complete order", "commit", "after_commit: completed"});
}

TEST_CASE("a before_commit cycle fails the commit with the chain in the message and rolls back") {
    choreo::bus bus{{.threads = 1, .max_commit_depth = 8}};
    journal log;
    recording_resource resource{&log};
    auto ping = bus.subscribe<order_created>([&](const order_created& e) { bus.publish(stock_deducted{e.id}); },
                                             {.when = phase::before_commit});
    auto pong = bus.subscribe<stock_deducted>([&](const stock_deducted& e) { bus.publish(order_created{e.id}); },
                                              {.when = phase::before_commit});
    auto rolled = bus.subscribe<order_created>([&](const order_created&) { log.add("after_rollback"); },
                                               {.when = phase::after_rollback});
    auto unit = bus.begin(resource);
    bus.publish(order_created{1});
    std::string message;
    try {
        unit.commit();
    } catch (const choreo::commit_error& e) {
        message = e.what();
    }
    CHECK(message.find("probably a cycle") != std::string::npos);
    CHECK(message.find("test::order_created -> test::stock_deducted -> test::order_created") != std::string::npos);
    CHECK(unit.state() == choreo::unit_state::rolled_back);
    CHECK(log.count("commit") == 0);
    CHECK(log.count("rollback") == 1);
    CHECK(log.count("after_rollback") == 5); // one per order_created the unit held (depths 0, 2, 4, 6, 8)
}

TEST_CASE("an exception in before_commit rolls back, runs after_rollback and after_completion, reaches the caller") {
    choreo::bus bus{{.threads = 1}};
    journal log;
    recording_resource resource{&log};
    auto listeners = trace_phases<order_created>(bus, log, "order");
    auto thrower = bus.subscribe<order_created>([](const order_created&) { throw std::runtime_error("out of stock"); },
                                                {.when = phase::before_commit, .order = 1});
    auto unit = bus.begin(resource);
    bus.publish(order_created{1});
    CHECK_THROWS_WITH_AS(unit.commit(), "out of stock", std::runtime_error);
    CHECK(unit.state() == choreo::unit_state::rolled_back);
    CHECK(log.entries() == strings{"begin", "immediate:order", "before_commit:order", "rollback",
                                   "after_rollback:order", "after_completion:order(rolled_back)"});
}

TEST_CASE("a resource whose commit throws is rolled back and the caller gets the error") {
    choreo::bus bus{{.threads = 1}};
    journal log;
    recording_resource resource{&log, true};
    auto listeners = trace_phases<order_created>(bus, log, "order");
    auto unit = bus.begin(resource);
    bus.publish(order_created{1});
    CHECK_THROWS_WITH(unit.commit(), "disk full");
    CHECK(log.entries() == strings{"begin", "immediate:order", "before_commit:order", "commit", "rollback",
                                   "after_rollback:order", "after_completion:order(rolled_back)"});
}

TEST_CASE("a failing rollback is reported, and the unit still ends rolled back") {
    incidents seen;
    choreo::bus bus{{.threads = 1, .on_incident = seen.handler()}};
    journal log;
    recording_resource resource{&log, false, true};
    { auto unit = bus.begin(resource); }
    REQUIRE(seen.count(choreo::incident_kind::rollback_failed) == 1);
    CHECK(seen.all().front().message == "connection lost");
}

TEST_CASE("after_commit exceptions never undo the commit and reach the error handler; the other listeners run") {
    incidents seen;
    choreo::bus bus{{.threads = 1, .on_incident = seen.handler()}};
    journal log;
    recording_resource resource{&log};
    auto failing = bus.subscribe<order_created>([](const order_created&) { throw std::runtime_error("platform down"); },
                                                {.name = "send", .when = phase::after_commit});
    auto other = bus.subscribe<order_created>([&](const order_created&) { log.add("other after_commit"); },
                                              {.when = phase::after_commit, .order = 1});
    auto unit = bus.begin(resource);
    bus.publish(order_created{1});
    CHECK_NOTHROW(unit.commit());
    CHECK(unit.state() == choreo::unit_state::committed);
    CHECK(log.entries() == strings{"begin", "commit", "other after_commit"});
    auto all = seen.all();
    REQUIRE(all.size() == 1);
    CHECK(all[0].kind == choreo::incident_kind::retries_exhausted);
    CHECK(all[0].listener == "send");
    CHECK(all[0].message == "platform down");
}

TEST_CASE("after_* listeners are retried immediately by their retry policy; permanent errors are not") {
    incidents seen;
    choreo::bus bus{{.threads = 1, .on_incident = seen.handler()}};
    int flaky_calls = 0, permanent_calls = 0;
    auto flaky = bus.subscribe<order_created>(
        [&](const order_created&, const choreo::delivery_info& info) {
            ++flaky_calls;
            if (info.attempt() < 3) throw std::runtime_error("timeout");
        },
        {.name = "flaky", .when = phase::after_commit, .retry = {.immediate_retries = 5}});
    auto permanent = bus.subscribe<order_created>(
        [&](const order_created&) {
            ++permanent_calls;
            throw choreo::permanent_error("invalid card");
        },
        {.name = "permanent", .when = phase::after_commit, .retry = {.immediate_retries = 5}});
    auto unit = bus.begin();
    bus.publish(order_created{1});
    unit.commit();
    CHECK(flaky_calls == 3);
    CHECK(permanent_calls == 1);
    CHECK(seen.count(choreo::incident_kind::listener_failed) == 2);
    CHECK(seen.count(choreo::incident_kind::retries_exhausted) == 1);
}

TEST_CASE("events published by after_commit listeners are delivered in a unit of work of their own") {
    choreo::bus bus{{.threads = 1}};
    journal log;
    recording_resource resource{&log};
    auto complete = bus.subscribe<order_created>(
        [&](const order_created& e) {
            log.add("after_commit: order");
            bus.publish(order_completed{e.id});
        },
        {.when = phase::after_commit});
    auto follow = trace_phases<order_completed>(bus, log, "completed");
    auto unit = bus.begin(resource);
    bus.publish(order_created{1});
    unit.commit();
    CHECK(log.entries() == strings{"begin", "commit", "after_commit: order", "immediate:completed",
                                   "before_commit:completed", "after_commit:completed",
                                   "after_completion:completed(committed)"});
}

TEST_CASE("what an after_commit listener published before it threw is rolled back, then retried with it") {
    incidents seen;
    choreo::bus bus{{.threads = 1, .on_incident = seen.handler()}};
    journal log;
    auto complete = bus.subscribe<order_created>(
        [&](const order_created& e, const choreo::delivery_info& info) {
            bus.publish(order_completed{e.id});
            if (info.attempt() == 1) throw std::runtime_error("first try fails");
        },
        {.when = phase::after_commit, .retry = {.immediate_retries = 1}});
    auto follow = trace_phases<order_completed>(bus, log, "completed");
    auto unit = bus.begin();
    bus.publish(order_created{1});
    unit.commit();
    CHECK(log.entries() == strings{"immediate:completed", "after_rollback:completed",
                                   "after_completion:completed(rolled_back)", "immediate:completed",
                                   "before_commit:completed", "after_commit:completed",
                                   "after_completion:completed(committed)"});
    CHECK(seen.count(choreo::incident_kind::listener_failed) == 1);
}

TEST_CASE("misuse of a unit of work gives clear errors") {
    choreo::bus bus{{.threads = 1}};
    SUBCASE("commit twice") {
        auto unit = bus.begin();
        unit.commit();
        CHECK_THROWS_WITH_AS(unit.commit(), "cannot commit a unit of work that has already committed",
                             choreo::usage_error);
    }
    SUBCASE("commit after rollback") {
        auto unit = bus.begin();
        unit.rollback();
        CHECK_THROWS_WITH_AS(unit.commit(), "cannot commit a unit of work that has already rolled back",
                             choreo::usage_error);
        CHECK_THROWS_AS(unit.rollback(), choreo::usage_error);
    }
    SUBCASE("publish into a finished unit") {
        auto unit = bus.begin();
        unit.commit();
        CHECK_THROWS_WITH_AS(unit.publish(order_created{1}),
                             "cannot publish into a unit of work that has already committed", choreo::usage_error);
    }
    SUBCASE("commit from inside its own before_commit listener") {
        auto unit = bus.begin();
        auto reentrant =
            bus.subscribe<order_created>([&](const order_created&) { unit.commit(); }, {.when = phase::before_commit});
        unit.publish(order_created{1});
        CHECK_THROWS_WITH_AS(unit.commit(), doctest::Contains("while the unit of work is committing"),
                             choreo::usage_error);
        CHECK(unit.state() == choreo::unit_state::rolled_back);
    }
    SUBCASE("too many events in one unit") {
        choreo::bus small{{.threads = 1, .max_commit_events = 3}};
        auto listener = small.subscribe<order_created>([](const order_created&) {}, {.when = phase::after_commit});
        auto unit = small.begin();
        for (int i = 0; i < 3; ++i) unit.publish(order_created{i});
        CHECK_THROWS_AS(unit.publish(order_created{4}), choreo::commit_error);
    }
}

TEST_CASE("nested units: the innermost is current; an explicit unit takes what is published through it") {
    choreo::bus bus{{.threads = 1}};
    journal log;
    recording_resource outer_db{&log}, inner_db{&log};
    std::vector<int> committed;
    auto listener = bus.subscribe<order_created>([&](const order_created& e) { committed.push_back(e.id); },
                                                 {.when = phase::after_commit});
    auto outer = bus.begin(outer_db);
    {
        auto inner = bus.begin(inner_db);
        CHECK(bus.current_unit() == &inner);
        bus.publish(order_created{1});
        outer.publish(order_created{2});
        inner.commit();
        CHECK(committed == std::vector<int>{1});
        CHECK(bus.current_unit() == &outer);
    }
    bus.publish(order_created{3});
    outer.commit();
    CHECK(committed == std::vector<int>{1, 2, 3});
}

TEST_CASE("nested units are independent: the inner one's after_commit runs though the outer rolls back") {
    choreo::bus bus{{.threads = 1}};
    std::vector<int> committed, rolled_back;
    auto on_commit = bus.subscribe<order_created>([&](const order_created& e) { committed.push_back(e.id); },
                                                  {.when = phase::after_commit});
    auto on_rollback = bus.subscribe<order_created>([&](const order_created& e) { rolled_back.push_back(e.id); },
                                                    {.when = phase::after_rollback});
    {
        auto outer = bus.begin();
        outer.publish(order_created{1});
        {
            auto inner = bus.begin();
            inner.publish(order_created{2});
            inner.commit();
        }
        CHECK(committed == std::vector<int>{2}); // not waiting for the outer unit, unlike Spring's REQUIRED
        outer.rollback();
    }
    CHECK(committed == std::vector<int>{2});
    CHECK(rolled_back == std::vector<int>{1});
}

TEST_CASE("a unit completed out of order leaves the thread's current unit consistent") {
    choreo::bus bus{{.threads = 1}};
    auto listener = bus.subscribe<order_created>([](const order_created&) {}, {.when = phase::after_commit});
    std::unique_ptr<choreo::unit_of_work> outer{new choreo::unit_of_work(bus.begin())};
    auto inner = bus.begin();
    outer->commit();
    outer.reset();
    CHECK(bus.current_unit() == &inner);
    inner.commit();
    CHECK(bus.current_unit() == nullptr);
    CHECK_THROWS_AS(bus.publish(order_created{1}), choreo::no_transaction_error);
}

TEST_CASE("a before_commit listener reaches its unit and the resource it runs on") {
    choreo::bus bus{{.threads = 1}};
    journal log;
    recording_resource first{&log}, second{&log};
    std::vector<std::string> seen;
    auto listener = bus.subscribe<order_created>(
        [&](const order_created&) {
            auto* unit = choreo::unit_of_work::committing();
            REQUIRE(unit != nullptr);
            seen.push_back(unit->runs_on(first) ? "first" : unit->runs_on(second) ? "second" : "neither");
            // A unit begun and committed inside hands the role back when it is done.
            auto inner = bus.begin(second);
            inner.publish(stock_deducted{});
            inner.commit();
            CHECK(choreo::unit_of_work::committing() == unit);
        },
        {.when = phase::before_commit});
    auto inner_listener = bus.subscribe<stock_deducted>(
        [&](const stock_deducted&) {
            seen.push_back(choreo::unit_of_work::committing()->runs_on(second) ? "inner on second" : "inner elsewhere");
        },
        {.when = phase::before_commit});
    CHECK(choreo::unit_of_work::committing() == nullptr);
    {
        auto unit = bus.begin(first);
        unit.publish(order_created{1});
        unit.commit();
    }
    // A reference to a resource, given where a resource goes (as the saga layer does), is
    // the same resource, not a wrapper around it.
    auto ref = choreo::detail::resource_ref::to(first);
    {
        auto unit = bus.begin(ref);
        CHECK(unit.runs_on(first));
        unit.publish(order_created{2});
        unit.commit();
    }
    CHECK(seen == strings{"first", "inner on second", "first", "inner on second"});
    CHECK(choreo::unit_of_work::committing() == nullptr);
}
