// Asynchronous delivery: executors, batching, per-key ordering, retries, drain, shutdown.
#include "support.hpp"

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <limits>
#include <map>

using namespace test;
using choreo::delivery;
using choreo::phase;

TEST_CASE("asynchronous after_commit listeners run on the bus's pool, after the commit returned") {
    choreo::bus bus{{.threads = 2}};
    std::atomic<bool> ran{false};
    std::thread::id listener_thread;
    std::atomic<bool> release{false};
    auto listener = bus.subscribe<order_created>(
        [&](const order_created&) {
            while (!release) std::this_thread::yield();
            listener_thread = std::this_thread::get_id();
            ran = true;
        },
        {.when = phase::after_commit, .mode = delivery::asynchronous});
    auto unit = bus.begin();
    bus.publish(order_created{1});
    unit.commit(); // returns although the listener is still blocked
    CHECK_FALSE(ran.load());
    release = true;
    bus.drain();
    CHECK(ran.load());
    CHECK(listener_thread != std::this_thread::get_id());
}

TEST_CASE("the events of one commit reach an executor as one job, not one per listener") {
    boost::asio::io_context context;
    choreo::bus bus{{.threads = 1}};
    std::vector<int> seen;
    auto first = bus.subscribe<order_created>(
        [&](const order_created& e) { seen.push_back(e.id); },
        {.when = phase::after_commit, .mode = delivery::asynchronous, .executor = context.get_executor()});
    auto second = bus.subscribe<stock_deducted>(
        [&](const stock_deducted& e) { seen.push_back(100 + e.id); },
        {.when = phase::after_commit, .mode = delivery::asynchronous, .executor = context.get_executor()});
    auto unit = bus.begin();
    for (int i = 0; i < 10; ++i) {
        bus.publish(order_created{i});
        bus.publish(stock_deducted{i});
    }
    unit.commit();
    CHECK(context.run() == 1); // handlers run: one job for twenty deliveries
    REQUIRE(seen.size() == 20);
    CHECK(seen[0] == 0);
    CHECK(seen[1] == 100);
    CHECK(seen[19] == 109);
}

TEST_CASE("per-key ordering: events of one key are handled one at a time, in publication order") {
    choreo::bus bus{{.threads = 4}};
    std::mutex mutex;
    std::map<std::string, std::vector<int>> by_key;
    std::map<std::string, int> running;
    bool overlapped = false;
    auto listener = bus.subscribe<order_created>(
        [&](const order_created& e, const choreo::envelope& env) {
            std::string key{env.key.view()};
            {
                std::lock_guard lock{mutex};
                if (running[key]++ != 0) overlapped = true;
                by_key[key].push_back(e.id);
            }
            std::this_thread::sleep_for(std::chrono::microseconds{50});
            std::lock_guard lock{mutex};
            --running[key];
        },
        {.when = phase::after_commit, .mode = delivery::asynchronous, .order_by = choreo::ordering::per_key});
    const std::vector<choreo::correlation_key> keys{choreo::correlation_key{"a"}, choreo::correlation_key{"b"},
                                                    choreo::correlation_key{"c"}, choreo::correlation_key{"d"}};
    for (int i = 0; i < 200; ++i) {
        auto unit = bus.begin();
        bus.publish(order_created{i}, keys[static_cast<std::size_t>(i) % keys.size()]);
        unit.commit();
    }
    bus.drain();
    CHECK_FALSE(overlapped);
    REQUIRE(by_key.size() == 4);
    for (auto& [key, ids] : by_key) {
        CHECK(ids.size() == 50);
        CHECK(std::is_sorted(ids.begin(), ids.end()));
    }
}

TEST_CASE("per-key ordering holds across a delayed retry: the key's later events wait behind it") {
    incidents seen;
    choreo::bus bus{{.threads = 2, .on_incident = seen.handler()}};
    std::mutex mutex;
    std::vector<std::string> handled; // "key:id/attempt", in the order they ran
    auto listener = bus.subscribe<order_created>(
        [&](const order_created& e, const choreo::delivery_info& info) {
            {
                std::lock_guard lock{mutex};
                handled.push_back(fmt::format("{}:{}/{}", info.event_envelope().key.view(), e.id, info.attempt()));
            }
            if (e.id == 1 && info.attempt() == 1) throw std::runtime_error("busy");
        },
        {.name = "keyed",
         .when = phase::after_commit,
         .mode = delivery::asynchronous,
         .order_by = choreo::ordering::per_key,
         .retry = {.delayed_retries = 2, .initial_delay = std::chrono::milliseconds{100}}});
    const choreo::correlation_key key{"order-7"};
    for (int id : {1, 2, 3}) { // three commits; the first fails once and is retried after 100 ms
        auto unit = bus.begin();
        bus.publish(order_created{id}, key);
        unit.commit();
    }
    bus.drain();
    CHECK(handled == std::vector<std::string>{"order-7:1/1", "order-7:1/2", "order-7:2/1", "order-7:3/1"});
    CHECK(seen.count(choreo::incident_kind::listener_failed) == 1);
}

TEST_CASE("per-key ordering: a retry that is abandoned releases the key's later events") {
    incidents seen;
    choreo::bus bus{{.threads = 2, .on_incident = seen.handler()}};
    std::mutex mutex;
    std::vector<int> handled;
    auto listener = bus.subscribe<order_created>(
        [&](const order_created& e) {
            {
                std::lock_guard lock{mutex};
                handled.push_back(e.id);
            }
            if (e.id == 1) throw std::runtime_error("always");
        },
        {.when = phase::after_commit,
         .mode = delivery::asynchronous,
         .order_by = choreo::ordering::per_key,
         .retry = {.delayed_retries = 2, .initial_delay = std::chrono::milliseconds{20}}});
    const choreo::correlation_key key{"order-8"};
    for (int id : {1, 2}) {
        auto unit = bus.begin();
        bus.publish(order_created{id}, key);
        unit.commit();
    }
    bus.drain();
    CHECK(handled == std::vector<int>{1, 1, 1, 2});
    CHECK(seen.count(choreo::incident_kind::retries_exhausted) == 1);
}

TEST_CASE("delayed retries back off on a timer and deliver once") {
    incidents seen;
    choreo::bus bus{{.threads = 2, .on_incident = seen.handler()}};
    std::mutex mutex;
    std::vector<std::pair<unsigned, std::chrono::steady_clock::time_point>> attempts;
    auto listener = bus.subscribe<order_created>(
        [&](const order_created&, const choreo::delivery_info& info) {
            {
                std::lock_guard lock{mutex};
                attempts.emplace_back(info.attempt(), std::chrono::steady_clock::now());
            }
            if (info.attempt() < 4) throw std::runtime_error("busy");
        },
        {.name = "flaky",
         .when = phase::after_commit,
         .mode = delivery::asynchronous,
         .retry = {.immediate_retries = 1,
                   .delayed_retries = 3,
                   .initial_delay = std::chrono::milliseconds{5},
                   .backoff_multiplier = 2.0}});
    auto unit = bus.begin();
    bus.publish(order_created{1});
    unit.commit();
    bus.drain();
    REQUIRE(attempts.size() == 4);
    for (unsigned i = 0; i < 4; ++i) CHECK(attempts[i].first == i + 1);
    // Attempts 3 and 4 are delayed retries: at least 5 ms and 10 ms after the one before.
    CHECK(attempts[2].second - attempts[1].second >= std::chrono::milliseconds{5});
    CHECK(attempts[3].second - attempts[2].second >= std::chrono::milliseconds{10});
    CHECK(seen.count(choreo::incident_kind::listener_failed) == 3);
    CHECK(seen.count(choreo::incident_kind::retries_exhausted) == 0);
}

TEST_CASE("the backoff delays grow by the multiplier up to the cap") {
    choreo::retry_policy policy{.initial_delay = std::chrono::milliseconds{100},
                                .backoff_multiplier = 3.0,
                                .max_delay = std::chrono::milliseconds{1000}};
    CHECK(policy.delay_before(0) == std::chrono::milliseconds{100});
    CHECK(policy.delay_before(1) == std::chrono::milliseconds{300});
    CHECK(policy.delay_before(2) == std::chrono::milliseconds{900});
    CHECK(policy.delay_before(3) == std::chrono::milliseconds{1000});
    CHECK(policy.delay_before(60) == std::chrono::milliseconds{1000});
    // The largest cap is returned as it is, not converted through a double that overflows.
    policy.max_delay = std::chrono::milliseconds::max();
    CHECK(policy.delay_before(200) == std::chrono::milliseconds::max());
}

TEST_CASE("a retry policy with a negative delay or a multiplier below one or not a number is refused") {
    choreo::bus bus;
    auto with = [&](choreo::retry_policy retry) {
        return bus.subscribe<order_created>(
            [](const order_created&) {}, {.when = phase::after_commit, .mode = delivery::asynchronous, .retry = retry});
    };
    CHECK_THROWS_AS(with({.initial_delay = std::chrono::milliseconds{-1}}), choreo::usage_error);
    CHECK_THROWS_AS(with({.max_delay = std::chrono::milliseconds{-1}}), choreo::usage_error);
    CHECK_THROWS_AS(with({.backoff_multiplier = 0.5}), choreo::usage_error);
    CHECK_THROWS_AS(with({.backoff_multiplier = std::numeric_limits<double>::quiet_NaN()}), choreo::usage_error);
    CHECK_THROWS_AS(with({.backoff_multiplier = std::numeric_limits<double>::infinity()}), choreo::usage_error);
    CHECK_NOTHROW(with({.delayed_retries = 3, .backoff_multiplier = 1.0}));
}

TEST_CASE("exhausted and non-retryable asynchronous failures go to the error handler") {
    incidents seen;
    choreo::bus bus{{.threads = 1, .on_incident = seen.handler()}};
    std::atomic<int> always_calls{0}, rejected_calls{0};
    auto always = bus.subscribe<order_created>(
        [&](const order_created&) {
            ++always_calls;
            throw std::runtime_error("down");
        },
        {.name = "always fails",
         .when = phase::after_commit,
         .mode = delivery::asynchronous,
         .retry = {.immediate_retries = 1, .delayed_retries = 1, .initial_delay = std::chrono::milliseconds{1}}});
    auto rejected = bus.subscribe<order_created>(
        [&](const order_created&) {
            ++rejected_calls;
            throw std::invalid_argument("bad payload");
        },
        {.name = "custom category",
         .when = phase::after_commit,
         .mode = delivery::asynchronous,
         .retry = {.immediate_retries = 3, .is_retryable = [](const std::exception_ptr& e) {
                       try {
                           std::rethrow_exception(e);
                       } catch (const std::invalid_argument&) {
                           return false;
                       } catch (...) {
                           return true;
                       }
                   }}});
    auto unit = bus.begin();
    bus.publish(order_created{1});
    unit.commit();
    bus.drain();
    CHECK(always_calls == 3);
    CHECK(rejected_calls == 1);
    auto all = seen.all();
    auto exhausted = std::count_if(all.begin(), all.end(),
                                   [](auto& i) { return i.kind == choreo::incident_kind::retries_exhausted; });
    CHECK(exhausted == 2);
}

TEST_CASE("a listener never runs after its connection is gone, even with a job already queued") {
    boost::asio::io_context context;
    choreo::bus bus{{.threads = 1}};
    int calls = 0;
    auto listener = bus.subscribe<order_created>(
        [&](const order_created&) { ++calls; },
        {.when = phase::after_commit, .mode = delivery::asynchronous, .executor = context.get_executor()});
    auto unit = bus.begin();
    bus.publish(order_created{1});
    unit.commit();
    listener.disconnect();
    context.run();
    CHECK(calls == 0);
}

TEST_CASE("asynchronous immediate listeners get a copy of the event at once") {
    choreo::bus bus{{.threads = 1}};
    std::atomic<int> sum{0};
    auto listener =
        bus.subscribe<order_created>([&](const order_created& e) { sum += e.id; }, {.mode = delivery::asynchronous});
    for (int i = 1; i <= 10; ++i) bus.publish(order_created{i});
    bus.drain();
    CHECK(sum == 55);
}

TEST_CASE("what an asynchronous listener publishes is committed in its own unit of work") {
    choreo::bus bus{{.threads = 2}};
    journal log;
    auto relay = bus.subscribe<order_created>([&](const order_created& e) { bus.publish(order_completed{e.id}); },
                                              {.when = phase::after_commit, .mode = delivery::asynchronous});
    auto before = bus.subscribe<order_completed>([&](const order_completed&) { log.add("before_commit"); },
                                                 {.when = phase::before_commit});
    auto after = bus.subscribe<order_completed>([&](const order_completed&) { log.add("after_commit"); },
                                                {.when = phase::after_commit, .mode = delivery::asynchronous});
    auto unit = bus.begin();
    bus.publish(order_created{1});
    unit.commit();
    REQUIRE(eventually([&] { return log.entries().size() == 2; }));
    bus.drain();
    CHECK(log.entries() == std::vector<std::string>{"before_commit", "after_commit"});
}

TEST_CASE("drain waits for work in flight; drain from a listener of the same bus is refused") {
    choreo::bus bus{{.threads = 2}};
    std::atomic<int> done{0};
    std::string refusal;
    auto slow = bus.subscribe<order_created>(
        [&](const order_created&) {
            std::this_thread::sleep_for(std::chrono::milliseconds{30});
            ++done;
        },
        {.when = phase::after_commit, .mode = delivery::asynchronous});
    auto self_drain = bus.subscribe<stock_deducted>(
        [&](const stock_deducted&) {
            try {
                bus.drain();
            } catch (const choreo::usage_error& e) {
                refusal = e.what();
            }
        },
        {.when = phase::after_commit, .mode = delivery::asynchronous});
    for (int i = 0; i < 4; ++i) {
        auto unit = bus.begin();
        bus.publish(order_created{i});
        unit.commit();
    }
    {
        auto unit = bus.begin();
        bus.publish(stock_deducted{1});
        unit.commit();
    }
    bus.drain();
    CHECK(done == 4);
    CHECK(refusal.find("would wait for itself") != std::string::npos);
}

TEST_CASE("shutdown finishes work in flight, then refuses publish, begin, commit and subscribe") {
    choreo::bus bus{{.threads = 2}};
    std::atomic<int> finished{0};
    std::atomic<int> follow_ups{0};
    auto slow = bus.subscribe<order_created>(
        [&](const order_created& e) {
            std::this_thread::sleep_for(std::chrono::milliseconds{20});
            bus.publish(order_completed{e.id}); // work in flight may still publish
            ++finished;
        },
        {.when = phase::after_commit, .mode = delivery::asynchronous});
    auto follow = bus.subscribe<order_completed>([&](const order_completed&) { ++follow_ups; },
                                                 {.when = phase::after_commit, .mode = delivery::asynchronous});
    std::unique_ptr<choreo::unit_of_work> pending{new choreo::unit_of_work(bus.begin())};
    pending->publish(order_created{99});
    for (int i = 0; i < 3; ++i) {
        auto unit = bus.begin();
        bus.publish(order_created{i});
        unit.commit();
    }
    bus.shutdown();
    CHECK(finished == 3);
    CHECK(follow_ups == 3);
    CHECK(bus.is_closed());
    CHECK_THROWS_AS(bus.publish(order_created{1}), choreo::bus_closed_error);
    CHECK_THROWS_AS((void)bus.begin(), choreo::bus_closed_error);
    CHECK_THROWS_AS(pending->commit(), choreo::bus_closed_error);
    CHECK(pending->state() == choreo::unit_state::rolled_back);
    CHECK_THROWS_AS((void)bus.subscribe<order_created>([](const order_created&) {}), choreo::bus_closed_error);
    CHECK_NOTHROW(bus.shutdown());
    CHECK(finished == 3);
}
