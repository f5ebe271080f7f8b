// The tracer and the error handler.
#include "support.hpp"

#include "../support/stderr_capture.hpp"

#include <doctest/doctest.h>

using namespace test;
using choreo::phase;

namespace {
struct traced {
    std::string event_type, listener;
    phase when;
    choreo::dispatch_outcome outcome;
    std::thread::id thread;
    std::string error;
};
} // namespace

TEST_CASE("the tracer sees every dispatch: event type, listener, phase, thread, outcome") {
    std::mutex mutex;
    std::vector<traced> traces;
    choreo::bus bus{{.threads = 1, .tracer = [&](const choreo::dispatch_trace& t) {
                         std::lock_guard lock{mutex};
                         CHECK(t.duration.count() >= 0);
                         CHECK_FALSE(t.event_envelope.id.is_nil());
                         traces.push_back({std::string{t.event_type}, std::string{t.listener}, t.listener_phase,
                                           t.outcome, t.thread, t.error ? choreo::describe(t.error) : ""});
                     }}};
    auto a = bus.subscribe<order_created>([](const order_created&) {}, {.name = "on publish"});
    auto b =
        bus.subscribe<order_created>([](const order_created&) {}, {.name = "in commit", .when = phase::before_commit});
    auto c = bus.subscribe<order_created>([](const order_created&) { throw std::runtime_error("nope"); },
                                          {.name = "after", .when = phase::after_commit});
    auto d = bus.subscribe<order_created>(
        [](const order_created&) {},
        {.name = "async", .when = phase::after_commit, .mode = choreo::delivery::asynchronous});
    auto unit = bus.begin();
    bus.publish(order_created{1});
    unit.commit();
    bus.drain();
    std::lock_guard lock{mutex};
    REQUIRE(traces.size() == 4);
    CHECK(traces[0].listener == "on publish");
    CHECK(traces[0].when == phase::immediate);
    CHECK(traces[0].event_type == "test::order_created");
    CHECK(traces[1].listener == "in commit");
    CHECK(traces[1].when == phase::before_commit);
    CHECK(traces[2].listener == "after");
    CHECK(traces[2].outcome == choreo::dispatch_outcome::failed);
    CHECK(traces[2].error == "nope");
    CHECK(traces[3].listener == "async");
    CHECK(traces[3].outcome == choreo::dispatch_outcome::succeeded);
    CHECK(traces[3].thread != std::this_thread::get_id());
}

TEST_CASE("a listener throwing something that is not a std::exception is reported, not fatal") {
    incidents seen;
    choreo::bus bus{{.threads = 1, .on_incident = seen.handler()}};
    auto weird = bus.subscribe<order_created>([](const order_created&) { throw 42; },
                                              {.name = "weird", .when = phase::after_commit});
    auto unit = bus.begin();
    bus.publish(order_created{1});
    CHECK_NOTHROW(unit.commit());
    auto all = seen.all();
    REQUIRE(all.size() == 1);
    CHECK(all[0].message == "an exception not derived from std::exception");
}

TEST_CASE("an error handler that throws does not break delivery, and its incident is printed, not lost") {
    choreo::bus bus{{.threads = 1, .on_incident = [](const choreo::incident&) { throw std::runtime_error("oops"); }}};
    int later = 0;
    auto failing = bus.subscribe<order_created>([](const order_created&) { throw std::runtime_error("card declined"); },
                                                {.name = "charge card", .when = phase::after_commit});
    auto after =
        bus.subscribe<order_created>([&](const order_created&) { ++later; }, {.when = phase::after_commit, .order = 1});
    test_support::stderr_capture err;
    auto unit = bus.begin();
    bus.publish(order_created{1});
    CHECK_NOTHROW(unit.commit());
    CHECK(later == 1);
    auto printed = err.text();
    INFO(printed);
    CHECK(printed.find("the error handler threw (oops)") != std::string::npos);
    CHECK(printed.find("retries_exhausted: listener 'charge card' for test::order_created") != std::string::npos);
    CHECK(printed.find("card declined") != std::string::npos);
}
