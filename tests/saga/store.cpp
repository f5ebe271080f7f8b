// memory_store against the store contract (store_contract.hpp), under many sagas at once
// (concurrent_orders.hpp), and what is its own.

#include <choreo/saga/memory_store.hpp>

#include "concurrent_orders.hpp"
#include "store_contract.hpp"

#include <string>

#include <doctest/doctest.h>

namespace store_contract {
template <>
struct store_under_test<memory_store> {
    memory_store value{};
    static store_under_test make() { return store_under_test{memory_store{}}; }
    memory_store& store() { return value; }
};
} // namespace store_contract

TEST_CASE_TEMPLATE_INVOKE(store_contract_id, choreo::saga::memory_store);

using namespace choreo::saga;
using namespace std::chrono_literals;
using store_contract::t0;

TEST_CASE("ended sagas beyond the limit are forgotten; running ones never") {
    memory_store store{{.ended_sagas_kept = 32}};
    for (int i = 0; i < 200; ++i) {
        auto key = "ended-" + std::to_string(i);
        REQUIRE(store.create(key, t0, t0 + 1s, "a/start", step_state::done));
        REQUIRE(store.complete(key).ended_now);
    }
    for (int i = 0; i < 50; ++i)
        REQUIRE(store.create("running-" + std::to_string(i), t0, t0 + 1s, "a/start", step_state::done));
    CHECK(store.size() <= 32 + 50);
    for (int i = 0; i < 50; ++i) CHECK(store.status("running-" + std::to_string(i)) == saga_status::running);
    CHECK(store.status("ended-199") == saga_status::completed);
}

TEST_CASE("concurrent sagas from several threads keep every invariant") {
    memory_store store;
    saga_test::concurrent_orders(store, 4, 25);
}
