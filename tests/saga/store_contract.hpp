#pragma once
// The semantics every rollback_store and marker_store must have (docs/sagas.md, "The store's
// contract"), written once and run against each store: memory_store in the saga tests,
// redis::saga_store in the Redis tests. A store under test is made by
// store_under_test<S>::make(), which returns something whose store() is a fresh, empty S.

#include <choreo/saga/detail/store_ref.hpp>
#include <choreo/saga/status.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

namespace store_contract {

using namespace choreo::saga;
using namespace std::chrono_literals;

inline const time_point t0{std::chrono::hours{1000}};

template <class S>
struct store_under_test; // specialised beside each store's tests

} // namespace store_contract

TEST_CASE_TEMPLATE_DEFINE("the rollback-state and marker store contract", S, store_contract_id) {
    using namespace store_contract;
    SUBCASE("create refuses an existing key") {
        auto made = store_under_test<S>::make();
        auto& store = made.store();
        CHECK(store.create("s", t0, t0 + 1s, "a/start", step_state::done));
        CHECK_FALSE(store.create("s", t0, t0 + 1s, "a/start", step_state::done));
        auto r = store.get("s");
        REQUIRE(r);
        CHECK(r->status == saga_status::running);
        CHECK(r->started == t0);
        CHECK(r->steps == std::vector<step_record>{{"a/start", step_state::done}});
        CHECK_FALSE(store.get("other"));
        CHECK_FALSE(store.status("other"));
    }
    SUBCASE("the barrier: claim once, refuse duplicates, refuse steps after the end") {
        auto made = store_under_test<S>::make();
        auto& store = made.store();
        REQUIRE(store.create("s", t0, t0 + 1s, "a/start", step_state::done));
        CHECK(store.claim("s", "b/step") == claim_outcome::claimed);
        CHECK(store.claim("s", "b/step") == claim_outcome::duplicate);
        CHECK(store.claim("nope", "b/step") == claim_outcome::unknown);
        auto t = store.finish("s", "b/step", true);
        CHECK(t.found);
        CHECK(t.status == saga_status::running);
        CHECK(store.claim("s", "b/step") == claim_outcome::duplicate);
        auto done = store.complete("s");
        CHECK(done.changed);
        CHECK(done.ended_now);
        CHECK(done.status == saga_status::completed);
        CHECK(store.claim("s", "c/late") == claim_outcome::not_running);
        CHECK_FALSE(store.complete("s").changed);
    }
    SUBCASE("rollback: first caller wins; the saga ends when every done step is compensated") {
        auto made = store_under_test<S>::make();
        auto& store = made.store();
        REQUIRE(store.create("s", t0, t0 + 1s, "a/start", step_state::done));
        REQUIRE(store.claim("s", "b/one") == claim_outcome::claimed);
        REQUIRE(store.finish("s", "b/one", true).found);
        REQUIRE(store.claim("s", "c/two") == claim_outcome::claimed);
        REQUIRE(store.claim("s", "d/three") == claim_outcome::claimed); // still running when the rollback comes

        auto first = store.roll_back("s", "boom", "c/two");
        CHECK(first.changed);
        CHECK_FALSE(first.ended_now);
        CHECK(first.status == saga_status::rolling_back);
        // Every step the saga has, so only their owners need to read the record.
        CHECK(first.steps == std::vector<std::string>{"a/start", "b/one", "c/two", "d/three"});
        auto second = store.roll_back("s", "other", "x/y");
        CHECK_FALSE(second.changed);
        CHECK(second.steps.empty());
        auto r = store.get("s");
        CHECK(r->reason == "boom");
        CHECK(r->failed_step == "c/two");
        CHECK(r->state_of("c/two") == step_state::failed);

        CHECK(store.begin_compensation("s", "c/two") == compensation_outcome::never_ran);
        CHECK(store.begin_compensation("s", "z/never") == compensation_outcome::never_ran);
        CHECK(store.begin_compensation("s", "d/three") == compensation_outcome::pending);
        CHECK(store.begin_compensation("s", "b/one") == compensation_outcome::run);
        CHECK(store.begin_compensation("s", "b/one") == compensation_outcome::duplicate);
        CHECK_FALSE(store.finish_compensation("s", "b/one").ended_now);
        CHECK(store.begin_compensation("s", "b/one") == compensation_outcome::duplicate);
        CHECK(store.begin_compensation("s", "a/start") == compensation_outcome::run);
        CHECK_FALSE(store.finish_compensation("s", "a/start").ended_now);

        // The running step finishes after the rollback: it is done, so its owner compensates it.
        auto late = store.finish("s", "d/three", true);
        CHECK(late.status == saga_status::rolling_back);
        CHECK(store.begin_compensation("s", "d/three") == compensation_outcome::run);
        auto last = store.finish_compensation("s", "d/three");
        CHECK(last.ended_now);
        CHECK(last.status == saga_status::rolled_back);
        CHECK(store.claim("s", "e/late") == claim_outcome::not_running);
    }
    SUBCASE("compensation is refused for running and completed sagas") {
        auto made = store_under_test<S>::make();
        auto& store = made.store();
        REQUIRE(store.create("s", t0, t0 + 1s, "a/start", step_state::done));
        CHECK(store.begin_compensation("s", "a/start") == compensation_outcome::not_rolling_back);
        REQUIRE(store.complete("s").ended_now);
        CHECK(store.begin_compensation("s", "a/start") == compensation_outcome::not_rolling_back);
        CHECK(store.begin_compensation("nope", "a/start") == compensation_outcome::unknown);
    }
    SUBCASE("a rollback with nothing done ends the saga at once") {
        auto made = store_under_test<S>::make();
        auto& store = made.store();
        REQUIRE(store.create("s", t0, t0 + 1s, "a/start", step_state::claimed));
        auto t = store.roll_back("s", "start rolled back", "a/start");
        CHECK(t.changed);
        CHECK(t.ended_now);
        CHECK(t.status == saga_status::rolled_back);
        CHECK(t.steps == std::vector<std::string>{"a/start"});
    }
    SUBCASE("expire rolls back running sagas at their deadline only") {
        auto made = store_under_test<S>::make();
        auto& store = made.store();
        REQUIRE(store.create("early", t0, t0 + 1s, "a/start", step_state::done));
        REQUIRE(store.create("late", t0, t0 + 5s, "a/start", step_state::done));
        REQUIRE(store.create("done", t0, t0 + 1s, "a/start", step_state::done));
        REQUIRE(store.complete("done").ended_now);
        CHECK(store.overdue(t0 + 2s) == std::vector<std::string>{"early"});
        CHECK_FALSE(store.expire("late", t0 + 2s, "timed out").changed);
        auto t = store.expire("early", t0 + 2s, "timed out");
        CHECK(t.changed);
        CHECK(t.status == saga_status::rolling_back);
        CHECK(t.steps == std::vector<std::string>{"a/start"});
        CHECK(store.get("early")->reason == "timed out");
        CHECK(store.overdue(t0 + 2s).empty());
        CHECK_FALSE(store.expire("done", t0 + 2s, "timed out").changed);
        // Still rolling back past its deadline (its start is not compensated yet): stalled,
        // until it ends.
        CHECK(store.stalled(t0 + 2s) == std::vector<std::string>{"early"});
        CHECK(store.stalled(t0 + 500ms).empty());
        REQUIRE(store.begin_compensation("early", "a/start") == compensation_outcome::run);
        CHECK(store.finish_compensation("early", "a/start").ended_now);
        CHECK(store.stalled(t0 + 2s).empty());
    }
    SUBCASE("a fan-in counts each branch once") {
        auto made = store_under_test<S>::make();
        auto& store = made.store();
        REQUIRE(store.create("s", t0, t0 + 1s, "a/start", step_state::done));
        auto one = store.join("s", "o/confirm", "o/items");
        CHECK((one.found && one.added && one.arrived == 1));
        auto again = store.join("s", "o/confirm", "o/items");
        CHECK((again.found && !again.added && again.arrived == 1));
        auto other = store.join("s", "o/other", "o/items");
        CHECK(other.arrived == 1);
        auto two = store.join("s", "o/confirm", "o/coupons");
        CHECK((two.added && two.arrived == 2));
        CHECK_FALSE(store.join("nope", "o/confirm", "o/items").found);
    }
    SUBCASE("finish_step: the step done, its fan-in arrivals and the completion, as the calls one by one") {
        // Through the runtime's adapter: the store's own finish_step if it has one, the
        // calls one by one otherwise; the answers are the same.
        auto made = store_under_test<S>::make();
        auto& store = made.store();
        choreo::saga::detail::store_adapter<S, S> runtime_view{store, store};
        REQUIRE(store.create("s", t0, t0 + 1s, "a/start", step_state::done));
        REQUIRE(store.claim("s", "o/items") == claim_outcome::claimed);
        REQUIRE(store.claim("s", "o/coupons") == claim_outcome::claimed);
        auto items = runtime_view.finish_step("s", "o/items", {"o/confirm", "o/other"}, false);
        CHECK((items.finished.found && items.finished.status == saga_status::running));
        REQUIRE(items.arrivals.size() == 2);
        CHECK((items.arrivals[0].found && items.arrivals[0].added && items.arrivals[0].arrived == 1));
        CHECK(items.arrivals[1].arrived == 1);
        CHECK_FALSE(items.completed);
        auto again = runtime_view.finish_step("s", "o/items", {"o/confirm"}, false);
        REQUIRE(again.arrivals.size() == 1);
        CHECK((!again.arrivals[0].added && again.arrivals[0].arrived == 1));
        auto coupons = runtime_view.finish_step("s", "o/coupons", {"o/confirm"}, true);
        REQUIRE(coupons.arrivals.size() == 1);
        CHECK((coupons.arrivals[0].added && coupons.arrivals[0].arrived == 2));
        REQUIRE(coupons.completed);
        CHECK((coupons.completed->changed && coupons.completed->ended_now));
        CHECK(coupons.completed->status == saga_status::completed);
        auto r = store.get("s");
        REQUIRE(r);
        CHECK(r->status == saga_status::completed);
        CHECK(r->steps == std::vector<step_record>{{"a/start", step_state::done},
                                                   {"o/items", step_state::done},
                                                   {"o/coupons", step_state::done}});
        // A saga no longer running: the finish alone, no arrival, no completion.
        REQUIRE(store.create("r", t0, t0 + 1s, "a/start", step_state::done));
        REQUIRE(store.claim("r", "o/items") == claim_outcome::claimed);
        REQUIRE(store.roll_back("r", "out of stock", "p/deduct").changed);
        auto late = runtime_view.finish_step("r", "o/items", {"o/confirm"}, true);
        CHECK((late.finished.found && late.finished.status == saga_status::rolling_back));
        CHECK(late.arrivals.empty());
        CHECK_FALSE(late.completed);
        CHECK(store.get("r")->steps.back() == step_record{"o/items", step_state::done}); // to be compensated
        CHECK_FALSE(runtime_view.finish_step("nope", "o/items", {}, false).finished.found);
    }
    SUBCASE("markers: one holder at a time, re-entrant, released by the holder only, expiring") {
        auto made = store_under_test<S>::make();
        auto& store = made.store();
        const time_point no_wait{};
        CHECK(store.acquire("product:1", "A", t0, t0 + 10s, no_wait).acquired);
        CHECK(store.acquire("product:1", "A", t0 + 1s, t0 + 20s, no_wait).acquired); // again, extended
        auto busy = store.acquire("product:1", "B", t0 + 15s, t0 + 30s, no_wait);
        CHECK_FALSE(busy.acquired);
        CHECK_FALSE(busy.queued);
        CHECK(busy.holder == "A");
        CHECK(store.holder("product:1", t0 + 15s) == "A");
        CHECK_FALSE(store.release("product:1", "B", t0 + 15s).released);
        CHECK(store.holder("product:1", t0 + 15s) == "A");
        CHECK(store.holder("product:1", t0 + 25s) == std::nullopt); // expired
        CHECK(store.acquire("product:1", "B", t0 + 25s, t0 + 30s, no_wait).acquired);
        CHECK_FALSE(store.release("product:1", "A", t0 + 25s).released);
        auto released = store.release("product:1", "B", t0 + 25s);
        CHECK(released.released);
        CHECK(released.next.empty());
        CHECK_FALSE(store.holder("product:1", t0));
    }
    SUBCASE("markers: waiters queue first come first served, and a release hands the marker on") {
        auto made = store_under_test<S>::make();
        auto& store = made.store();
        REQUIRE(store.acquire("coupon:7", "A", t0, t0 + 60s, t0).acquired);
        auto b = store.acquire("coupon:7", "B", t0 + 1s, t0 + 61s, t0 + 10s);
        CHECK((!b.acquired && b.queued && b.holder == "A" && b.ahead == 0));
        auto c = store.acquire("coupon:7", "C", t0 + 2s, t0 + 62s, t0 + 10s);
        CHECK((!c.acquired && c.queued && c.ahead == 1));
        auto d = store.acquire("coupon:7", "D", t0 + 3s, t0 + 63s, t0 + 4s); // waits only a second
        CHECK((d.queued && d.ahead == 2));
        auto c_again = store.acquire("coupon:7", "C", t0 + 3s, t0 + 63s, t0 + 10s); // queued once
        CHECK((c_again.queued && c_again.ahead == 1));

        auto handed = store.release("coupon:7", "A", t0 + 5s);
        CHECK(handed.released);
        CHECK(handed.next == "B");
        CHECK(store.holder("coupon:7", t0 + 5s) == "B");
        CHECK(store.holder("coupon:7", t0 + 64s) == "B"); // held for the 60 s it asked, from the hand-over
        CHECK_FALSE(store.acquire("coupon:7", "C", t0 + 6s, t0 + 66s, t0 + 10s).acquired);
        CHECK(store.acquire("coupon:7", "B", t0 + 6s, t0 + 66s, t0 + 10s).acquired); // handed: takes it

        CHECK_FALSE(store.release("coupon:7", "C", t0 + 7s).released); // C gives up waiting
        auto freed = store.release("coupon:7", "B", t0 + 7s);          // D's wait ended at 4 s: nobody left
        CHECK(freed.released);
        CHECK(freed.next.empty());
        CHECK_FALSE(store.holder("coupon:7", t0 + 7s));
        CHECK(store.acquire("coupon:7", "E", t0 + 8s, t0 + 68s, t0 + 8s).acquired);
    }
    SUBCASE("markers: a waiter past its wait is refused, not queued; an expired holder lets the caller in") {
        auto made = store_under_test<S>::make();
        auto& store = made.store();
        REQUIRE(store.acquire("m", "A", t0, t0 + 10s, t0).acquired);
        auto late = store.acquire("m", "B", t0 + 5s, t0 + 15s, t0 + 5s);
        CHECK((!late.acquired && !late.queued && late.ahead == 0));
        REQUIRE(store.acquire("m", "C", t0 + 5s, t0 + 15s, t0 + 30s).queued);
        CHECK(store.acquire("m", "B", t0 + 11s, t0 + 20s, t0 + 11s).acquired); // A expired
        auto handed = store.release("m", "B", t0 + 12s);
        CHECK(handed.next == "C");
    }
    SUBCASE("concurrent claims of one step: exactly one wins") {
        auto made = store_under_test<S>::make();
        auto& store = made.store();
        REQUIRE(store.create("s", t0, t0 + 1s, "a/start", step_state::done));
        std::atomic<int> winners{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < 8; ++t)
            threads.emplace_back([&] {
                for (int i = 0; i < 100; ++i)
                    if (store.claim("s", "b/" + std::to_string(i)) == claim_outcome::claimed) ++winners;
            });
        for (auto& t : threads) t.join();
        CHECK(winners == 100);
    }
}
