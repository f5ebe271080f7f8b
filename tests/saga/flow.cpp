// The order-creation saga end to end: the happy path, a failure injected at every step,
// and duplicated and reordered deliveries.

#include "../support/fault_log.hpp"
#include "support.hpp"

#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

using namespace choreo::saga;
using saga_test::shop;

namespace {

struct snapshot {
    std::map<std::string, long> products, coupons, points;
};

snapshot take(const shop& s) { return {s.products.rows(), s.coupons.rows(), s.points.rows()}; }

void require_untouched(const shop& s, const snapshot& before, const std::string& order) {
    CHECK(s.products.rows() == before.products);
    CHECK(s.coupons.rows() == before.coupons);
    CHECK(s.points.rows() == before.points);
    CHECK(s.payments.read(order + ".paid") == 0);
    CHECK(s.orders.read(order + ".price") == 0);
    CHECK(s.orders.read(order + ".discount") == 0);
}

} // namespace

TEST_CASE("the happy path completes the saga through fan-out and fan-in, with keys and causation") {
    testing::harness h;
    shop s{h.sagas};
    s.seed();
    std::vector<choreo::envelope> seen;
    auto watch = h.events.subscribe<saga_test::payment_created>(
        [&](const saga_test::payment_created&, const choreo::envelope& env) { seen.push_back(env); },
        {.name = "watch", .when = choreo::phase::after_commit});

    auto key = s.create_order(h.events, shop::sample_order("1"));
    CHECK(key.view() == "OrderCreateStart:1");
    h.settle();

    auto state = h.sagas.state(key);
    REQUIRE(state);
    CHECK(state->status == saga_status::completed);
    CHECK(state->count(step_state::done) == 9);
    CHECK(state->reason.empty());
    CHECK(s.orders.read("1.status") == saga_test::completed);
    CHECK(s.orders.read("1.price") == 2 * 300 + 500);
    CHECK(s.orders.read("1.discount") == 400);
    CHECK(s.products.read("apple.stock") == 8);
    CHECK(s.products.read("pear.stock") == 4);
    CHECK(s.coupons.read("welcome.used") == 1);
    CHECK(s.points.read("ann") == 100'000 - 700);
    CHECK(s.payments.read("1.paid") == 700);
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].key == key);
    CHECK_FALSE(seen[0].causation_id.is_nil());
    CHECK_FALSE(h.sagas.holder("product:apple")); // released when the saga ended
    CHECK(h.incidents().empty());
}

TEST_CASE("the registered steps are the nine steps of the flow") {
    testing::harness h;
    shop s{h.sagas};
    CHECK(h.sagas.steps() == std::vector<std::string>{"order/create order", "product/deduct stock", "coupon/use coupon",
                                                      "order/add items", "order/add coupons", "order/confirm order",
                                                      "point/use points", "payment/create payment",
                                                      "order/record payment"});
}

TEST_CASE("a failure at any step compensates every step that ran") {
    std::vector<std::string> steps;
    {
        testing::harness h;
        shop s{h.sagas};
        steps = h.sagas.steps();
    }
    bool held = true;
    for (const auto& order_kind : {testing::delivery_order::fifo, testing::delivery_order::lifo}) {
        for (const auto& failing : steps) {
            CAPTURE(failing);
            CAPTURE(static_cast<int>(order_kind));
            testing::harness h;
            shop s{h.sagas};
            s.seed();
            h.net.set_order(order_kind);
            auto before = take(s);
            h.faults.fail(failing);

            choreo::correlation_key key = choreo::saga::key_for<saga_test::order_create_start>("7");
            try {
                s.create_order(h.events, shop::sample_order("7"));
            } catch (const injected_fault&) {
                CHECK(failing == "order/create order");
            }
            h.settle();

            require_untouched(s, before, "7");
            auto state = h.sagas.state(key);
            REQUIRE(state);
            CHECK(state->status == saga_status::rolled_back);
            CHECK(state->failed_step == failing);
            if (failing == "order/create order") {
                CHECK(state->reason == "the unit of work that started the saga rolled back");
                CHECK(s.orders.read("7.status") == 0); // the order's own transaction rolled back
            } else {
                CHECK(state->reason == "fault injected into '" + failing + "' (call 1)");
                CHECK(s.orders.read("7.status") == saga_test::cancelled);
            }
            CHECK(state->count(step_state::done) == 0);
            CHECK(state->count(step_state::compensating) == 0);
            CHECK(state->count(step_state::claimed) == 0);
            CHECK(state->state_of(failing) == step_state::failed);
            CHECK_FALSE(h.sagas.holder("product:apple"));
            CHECK(h.count(saga_incident_kind::step_failed) == (failing == "order/create order" ? 0U : 1U));
            held = held && state->status == saga_status::rolled_back && state->count(step_state::done) == 0 &&
                   state->count(step_state::claimed) == 0 && state->count(step_state::compensating) == 0 &&
                   !h.sagas.holder("product:apple");
        }
    }
    test_support::record_fault("sagas", "a fault injected at each of the nine steps, deliveries in and out of order",
                               "saga, memory store", static_cast<long>(steps.size() * 2), held,
                               "every step that ran compensated, the saga rolled back, no marker left");
}

TEST_CASE("a domain failure (out of stock) rolls the saga back with its reason") {
    testing::harness h;
    shop s{h.sagas};
    s.seed();
    auto before = take(s);
    auto big = shop::sample_order("8");
    big.lines[1].quantity = 6; // only 5 pears
    auto key = s.create_order(h.events, big);
    h.settle();
    auto state = h.sagas.state(key);
    REQUIRE(state);
    CHECK(state->status == saga_status::rolled_back);
    CHECK(state->failed_step == "product/deduct stock");
    CHECK(state->reason == "out of stock: pear");
    require_untouched(s, before, "8");
    CHECK(s.orders.read("8.status") == saga_test::cancelled);
}

TEST_CASE("duplicated and reordered deliveries change nothing") {
    for (unsigned seed = 1; seed <= 12; ++seed) {
        CAPTURE(seed);
        testing::harness h;
        shop s{h.sagas};
        s.seed();
        h.net.set_order(testing::delivery_order::shuffled, seed);
        h.net.duplicate_deliveries(true);
        auto key = s.create_order(h.events, shop::sample_order("9"));
        h.settle();
        auto state = h.sagas.state(key);
        REQUIRE(state);
        CHECK(state->status == saga_status::completed);
        CHECK(s.products.read("apple.stock") == 8);
        CHECK(s.points.read("ann") == 100'000 - 700);
        CHECK(s.payments.read("9.paid") == 700);
        // Each of the seven cross-context deliveries came twice; the barrier refused every second one.
        CHECK(h.count(saga_incident_kind::duplicate_step) == 7);
    }
}

TEST_CASE("duplicated and reordered deliveries during a rollback still compensate exactly once") {
    std::vector<std::string> steps;
    {
        testing::harness h;
        shop s{h.sagas};
        steps = h.sagas.steps();
    }
    for (unsigned seed = 1; seed <= 4; ++seed) {
        for (const auto& failing : steps) {
            if (failing == "order/create order") continue;
            CAPTURE(seed);
            CAPTURE(failing);
            testing::harness h;
            shop s{h.sagas};
            s.seed();
            h.net.set_order(testing::delivery_order::shuffled, seed);
            h.net.duplicate_deliveries(true);
            auto before = take(s);
            h.faults.fail(failing);
            auto key = s.create_order(h.events, shop::sample_order("5"));
            h.settle();
            require_untouched(s, before, "5");
            auto state = h.sagas.state(key);
            REQUIRE(state);
            CHECK(state->status == saga_status::rolled_back);
            CHECK(state->failed_step == failing);
            CHECK(s.orders.read("5.status") == saga_test::cancelled);
        }
    }
}

TEST_CASE("a rollback that overtakes a step: null compensation, then the late step is refused") {
    testing::harness h;
    shop s{h.sagas};
    s.seed();
    auto before = take(s);
    // Newest first: the coupon step runs (and fails) before the stock step, and the
    // rollback it causes reaches the product context before the stock step's event does.
    h.net.set_order(testing::delivery_order::lifo);
    h.faults.fail("coupon/use coupon");
    auto key = s.create_order(h.events, shop::sample_order("3"));
    h.settle();

    auto state = h.sagas.state(key);
    REQUIRE(state);
    CHECK(state->status == saga_status::rolled_back);
    CHECK_FALSE(state->state_of("product/deduct stock"));                                  // never claimed
    CHECK(h.faults.calls(fault_injector::compensation_name("product/deduct stock")) == 0); // nothing to undo
    CHECK(h.faults.calls("product/deduct stock") == 0);                                    // the late step did not run
    CHECK(h.count(saga_incident_kind::step_too_late) == 1);
    require_untouched(s, before, "3");
}

TEST_CASE("a failing compensation is retried on the clock until it succeeds") {
    testing::harness h;
    shop s{h.sagas};
    s.seed();
    auto before = take(s);
    h.faults.fail("payment/create payment");
    h.faults.fail(fault_injector::compensation_name("point/use points"), 1, 2); // fails twice
    auto key = s.create_order(h.events, shop::sample_order("4"));
    h.settle();
    CHECK(h.sagas.state(key)->status == saga_status::rolling_back);
    CHECK(h.sagas.state(key)->state_of("point/use points") == step_state::compensating);
    h.advance(std::chrono::milliseconds{10}); // first retry, fails again
    CHECK(h.sagas.state(key)->status == saga_status::rolling_back);
    h.advance(std::chrono::milliseconds{20}); // second retry succeeds
    CHECK(h.sagas.state(key)->status == saga_status::rolled_back);
    CHECK(h.count(saga_incident_kind::compensation_failed) == 2);
    require_untouched(s, before, "4");
}

TEST_CASE("a compensation that never succeeds leaves the saga rolling_back and says so") {
    testing::harness h{{.compensation_retries = 2}};
    shop s{h.sagas};
    s.seed();
    h.faults.fail("payment/create payment");
    h.faults.fail_always(fault_injector::compensation_name("point/use points"));
    auto key = s.create_order(h.events, shop::sample_order("6"));
    h.advance(std::chrono::seconds{1}, std::chrono::milliseconds{10});
    auto state = h.sagas.state(key);
    CHECK(state->status == saga_status::rolling_back);
    CHECK(state->state_of("point/use points") == step_state::compensating);
    CHECK(h.count(saga_incident_kind::compensation_exhausted) == 1);
    CHECK(s.points.read("ann") == 100'000 - 700); // not refunded: visible, not silent
    CHECK(s.products.read("apple.stock") == 10);  // the other steps were undone
}

TEST_CASE("the fault injector puts any named listener under test through wrap()") {
    testing::harness h;
    int delivered = 0;
    auto listener = h.events.subscribe<saga_test::stock_deducted>(
        h.faults.wrap("audit", [&](const saga_test::stock_deducted&) { ++delivered; }), {.name = "audit"});
    h.faults.fail("audit", 2); // the second call throws
    h.events.publish(saga_test::stock_deducted{"1", 10});
    CHECK_THROWS_AS(h.events.publish(saga_test::stock_deducted{"2", 10}), injected_fault);
    h.events.publish(saga_test::stock_deducted{"3", 10});
    CHECK(delivered == 2);
    CHECK(h.faults.calls("audit") == 3);
}

namespace {
struct job_started {
    int id;
};
struct job_prepared {
    int id;
};

// Two participants on one harness: p starts sagas with job_started (logging its undo); each
// test adds the steps between p and q.
struct two_participants {
    testing::harness h;
    choreo::no_resource p_db, q_db;
    participant p{h.sagas, "p", p_db};
    participant q{h.sagas, "q", q_db};
    std::vector<std::string> log;

    two_participants() {
        p.starts<job_started>("begin", [this](const job_started&, step_context&) { log.emplace_back("undo begin"); });
    }
    choreo::correlation_key start() {
        auto unit = h.events.begin(p_db);
        auto key = p.start(unit, job_started{1}, "1");
        unit.commit();
        return key;
    }
};
} // namespace

TEST_CASE("a rollback that finds a newer step still running undoes it before the older ones") {
    // p's step "finish" is newer than p's start; q's check fails while "finish" is still running,
    // so the rollback reaches p with "finish" claimed. Newest first must still hold: "finish" is
    // undone when it commits, and only then the start. (Steps that take their events from an
    // outbox meet this often: the next context can run before the step records its finish.)
    two_participants t;
    auto& h = t.h;
    auto& p = t.p;
    auto& q = t.q;
    auto& log = t.log;
    q.step<job_started>("prepare", [](const job_started& e, step_context& ctx) { ctx.publish(job_prepared{e.id}); });
    p.step<job_prepared>(
        "finish",
        [&](const job_prepared&, step_context&) {
            log.emplace_back("finish");
            // q/check runs and fails now, and the rollback reaches p while this step runs. Another
            // thread, as in a real deployment: on this one, the rollback event would join the
            // step's own unit of work and wait for its commit.
            std::thread other{[&] { h.settle(); }};
            other.join();
        },
        [&](const job_prepared&, step_context&) { log.emplace_back("undo finish"); });
    q.step<job_prepared>("check", [](const job_prepared&, step_context&) {});
    h.faults.fail("q/check");

    auto key = t.start();
    h.settle();

    CHECK(log == std::vector<std::string>{"finish", "undo finish", "undo begin"});
    auto state = h.sagas.state(key);
    REQUIRE(state);
    CHECK(state->status == saga_status::rolled_back);
    CHECK(state->failed_step == "q/check");
    CHECK(h.count(saga_incident_kind::duplicate_compensation) == 0);
}

namespace {
struct job_reserved {
    int id;
};
} // namespace

TEST_CASE("a start that records its commit after the saga began rolling back waits for the newer steps' undo") {
    // The starting unit's own bookkeeping (on_started, after completion) can come after the
    // saga already ran on and failed elsewhere. The start must then not undo itself before
    // the newer step of the same participant: newest first still holds.
    two_participants t;
    auto& h = t.h;
    auto& p = t.p;
    auto& q = t.q;
    auto& log = t.log;
    p.step<job_started>(
        "reserve",
        [&](const job_started& e, step_context& ctx) {
            log.emplace_back("reserve");
            ctx.publish(job_reserved{e.id});
        },
        [&](const job_started&, step_context&) { log.emplace_back("undo reserve"); });
    q.step<job_reserved>("check", [](const job_reserved&, step_context&) {});
    h.faults.fail("q/check");
    // After the start commits and before its after-completion bookkeeping: p/reserve runs,
    // then q/check fails; the rollback's deliveries stay queued.
    auto hurry = h.events.subscribe<job_started>(
        [&](const job_started&) {
            std::thread other{[&] {
                REQUIRE(h.net.run_one()); // p/reserve
                REQUIRE(h.net.run_one()); // q/check, which fails
            }};
            other.join();
        },
        {.name = "hurry", .when = choreo::phase::after_commit});

    auto key = t.start();
    h.settle();

    CHECK(log == std::vector<std::string>{"reserve", "undo reserve", "undo begin"});
    auto state = h.sagas.state(key);
    REQUIRE(state);
    CHECK(state->status == saga_status::rolled_back);
}
