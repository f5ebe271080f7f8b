// A rollback names the saga's steps, so that only the participants owning one of them read
// the saga's record: in a distributed application every process hears every rollback.

#include "support.hpp"

#include <choreo/saga/memory_store.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

using namespace choreo::saga;
using saga_test::shop;

namespace {

// A memory store that counts the records read.
struct counting_store : memory_store {
    std::optional<saga_record> get(std::string_view key) const {
        ++reads;
        return memory_store::get(key);
    }
    mutable std::atomic<int> reads{0};
};

struct points_asked {
    std::string user;
};

} // namespace

TEST_CASE("a rollback names every step the saga had claimed or run") {
    testing::harness h;
    shop s{h.sagas};
    s.seed();
    std::mutex mutex;
    std::vector<saga_rolled_back> heard;
    auto listening = h.events.subscribe<saga_rolled_back>([&](const saga_rolled_back& e) {
        std::lock_guard lock{mutex};
        heard.push_back(e);
    });
    auto big = shop::sample_order("8");
    big.lines[1].quantity = 6; // only 5 pears
    auto key = s.create_order(h.events, big);
    h.settle();
    h.events.drain();
    auto record = h.sagas.state(key);
    REQUIRE(record->status == saga_status::rolled_back);
    std::lock_guard lock{mutex};
    REQUIRE(heard.size() == 1);
    // No step is claimed once the saga rolls back, so the record's steps at the end are the
    // steps it had then.
    CHECK(heard[0].steps == record->step_names());
    CHECK(std::count(heard[0].steps.begin(), heard[0].steps.end(), "order/create order") == 1);
    CHECK(std::count(heard[0].steps.begin(), heard[0].steps.end(), "product/deduct stock") == 1);
}

TEST_CASE("a participant that owns none of a rolled-back saga's steps does not read its record") {
    choreo::bus events{{.threads = 1}};
    counting_store store;
    runtime sagas{events, store};
    saga_test::table points;
    participant point{sagas, "point", points};
    point.step<points_asked>(
        "use points", [](const points_asked&, step_context&) {}, [](const points_asked&, step_context&) {});
    auto now = std::chrono::system_clock::now();
    REQUIRE(store.create("Order:1", now, now + std::chrono::minutes{1}, "order/create order", step_state::done));
    REQUIRE(store.roll_back("Order:1", "out of stock", "product/deduct stock").changed);
    auto hear = [&](std::vector<std::string> steps) {
        int before = store.reads;
        events.publish(saga_rolled_back{"Order:1", "out of stock", "product/deduct stock", std::move(steps)},
                       choreo::correlation_key{"Order:1"});
        events.drain();
        sagas.drain();
        return store.reads - before;
    };

    CHECK(hear({"order/create order", "product/deduct stock"}) == 0);
    // An owner reads the record to find what it must compensate.
    CHECK(hear({"order/create order", "point/use points"}) == 1);
    // Steps not named (an event from an older version): every participant reads, as before.
    CHECK(hear({}) == 1);
}
