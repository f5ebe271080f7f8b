// choreo/viz/saga_sequence.hpp: one saga as a Mermaid sequence diagram, from what its
// runtime's tracer reported.

#include <choreo/choreo.hpp>
#include <choreo/viz/saga_sequence.hpp>

#include <doctest/doctest.h>

#include "support.hpp"

#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using viz_test::database;
using viz_test::order_placed;
using viz_test::stock_reserved;

TEST_CASE("viz: a saga that failed is drawn with its start, the step crossed out and the compensation going back") {
    using namespace choreo::saga;
    choreo::bus bus;
    memory_store store;
    choreo::viz::saga_recorder recorder;
    runtime sagas{bus, store, {.tracer = std::ref(recorder)}};
    database orders, products, payments;
    participant order{sagas, "order", orders};
    participant product{sagas, "product", products};
    participant payment{sagas, "payment", payments};
    order.starts<order_placed>("place order", [](const order_placed&, step_context&) {});
    product.step<order_placed>(
        "reserve stock",
        [](const order_placed& e, step_context& saga) {
            saga.publish(stock_reserved{e.order_id, e.amount});
        },
        [](const order_placed&, step_context&) {});
    payment.step<stock_reserved>("charge card", [](const stock_reserved& e, step_context& saga) {
        if (e.amount > 1000) throw std::runtime_error("card declined; try #2");
        saga.complete_saga();
    });
    auto unit = bus.begin(orders);
    auto key = order.start(unit, order_placed{7, 5000}, "7");
    unit.commit();
    sagas.drain();

    auto entries = recorder.entries(key.view());
    REQUIRE(entries.size() == 5);
    CHECK(entries[0].work == saga_work::start);
    CHECK(entries[1].step == "product/reserve stock");
    CHECK(entries[2].step == "payment/charge card");
    CHECK_FALSE(entries[2].succeeded);
    CHECK(entries[2].error == "card declined; try #2");
    // Each participant undoes its own steps: the two compensations come in either order.
    std::set<std::string> undone;
    for (std::size_t i = 3; i < 5; ++i) {
        CHECK(entries[i].work == saga_work::compensation);
        CHECK(entries[i].succeeded);
        undone.insert(entries[i].step);
    }
    CHECK(undone == std::set<std::string>{"order/place order", "product/reserve stock"});
    auto state = sagas.state(key);
    REQUIRE(state);
    std::vector<choreo::viz::saga_entry> in_order{entries.begin(), entries.begin() + 3};
    in_order.push_back({"product/reserve stock", saga_work::compensation, true, {}});
    in_order.push_back({"order/place order", saga_work::compensation, true, {}});
    CHECK(choreo::viz::to_mermaid_sequence(key.view(), in_order, to_string(state->status)) ==
          "sequenceDiagram\n"
          "    title saga viz_test::order_placed:7\n"
          "    participant order\n"
          "    participant product\n"
          "    participant payment\n"
          "    Note over order: starts with place order\n"
          "    order->>product: reserve stock\n"
          "    product-xpayment: charge card failed: card declined, try #35;2\n"
          "    payment-->>product: undo reserve stock\n"
          "    payment-->>order: undo place order\n"
          "    Note over order,payment: rolled_back\n");
    CHECK(recorder.entries("no such saga").empty());
}

TEST_CASE("viz: the recorder forgets the oldest saga past its bound") {
    choreo::viz::saga_recorder recorder{2};
    for (std::string key : {"a", "b", "c"})
        recorder({key, "order/start", choreo::saga::saga_work::start, true, {}, {}, {}});
    CHECK(recorder.entries("a").empty());
    CHECK(recorder.entries("b").size() == 1);
    CHECK(recorder.entries("c").size() == 1);
}
