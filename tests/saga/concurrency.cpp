// Many sagas at once with the in-memory store (concurrent_orders.hpp).

#include "concurrent_orders.hpp"

#include <choreo/saga/memory_store.hpp>

#include <doctest/doctest.h>

TEST_CASE("concurrent sagas from several threads keep every invariant") {
    choreo::saga::memory_store store;
    saga_test::concurrent_orders(store, 4, 25);
}
