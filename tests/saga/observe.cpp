// What the saga layer reports, on the example of docs/sagas.md: a step that throws "card
// declined" is traced failed with its reason, by the bus's tracer and by the saga tracer,
// and each compensation it causes is a saga trace entry of its own; an incident handler
// that throws does not lose its incident.

#include "../support/stderr_capture.hpp"

#include <choreo/choreo.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

using namespace choreo::saga;

namespace {

struct order_placed {
    static constexpr std::string_view choreo_event_name = "OrderPlaced";
    int order_id;
};
struct stock_reserved {
    static constexpr std::string_view choreo_event_name = "StockReserved";
    int order_id;
};
struct table {
    void begin() {}
    void commit() {}
    void rollback() {}
};

// Every trace as one line: the bus's "listener outcome: error", the saga's "work key step outcome: error".
struct traces {
    std::mutex mutex;
    std::vector<std::string> bus, saga;
    choreo::tracer for_bus() {
        return [this](const choreo::dispatch_trace& t) {
            std::lock_guard lock{mutex};
            bus.push_back(fmt::format("{} {}{}", t.listener, choreo::to_string(t.outcome),
                                      t.error ? ": " + choreo::describe(t.error) : std::string{}));
        };
    }
    saga_tracer for_sagas() {
        return [this](const saga_trace& t) {
            std::lock_guard lock{mutex};
            saga.push_back(fmt::format("{} {} {} {}{}", to_string(t.work), t.saga, t.step,
                                       t.succeeded ? "ok" : "failed",
                                       t.error.empty() ? std::string{} : fmt::format(": {}", t.error)));
        };
    }
};

} // namespace

TEST_CASE("a failed step is traced failed with its reason, and each compensation is a trace entry of its own") {
    traces seen;
    choreo::bus bus{{.threads = 2, .tracer = seen.for_bus()}};
    memory_store store;
    runtime sagas{bus, store, {.on_incident = [](const saga_incident&) {}, .tracer = seen.for_sagas()}};
    table orders, products, payments;
    participant order{sagas, "order", orders};
    participant product{sagas, "product", products};
    participant payment{sagas, "payment", payments};
    order.starts<order_placed>("place order", [](const order_placed&, step_context&) {});
    product.step<order_placed>(
        "reserve stock", [](const order_placed& e, step_context& saga) { saga.publish(stock_reserved{e.order_id}); },
        [](const order_placed&, step_context&) {});
    payment.step<stock_reserved>(
        "charge card", [](const stock_reserved&, step_context&) { throw std::runtime_error("card declined"); });
    auto unit = bus.begin(orders);
    auto key = order.start(unit, order_placed{2}, "2");
    unit.commit();
    sagas.drain();
    bus.drain();
    REQUIRE(sagas.state(key)->status == saga_status::rolled_back);

    std::lock_guard lock{seen.mutex};
    INFO(fmt::format("bus:\n{}\nsaga:\n{}", fmt::join(seen.bus, "\n"), fmt::join(seen.saga, "\n")));
    auto has = [](const std::vector<std::string>& lines, const std::string& line) {
        return std::find(lines.begin(), lines.end(), line) != lines.end();
    };
    CHECK(has(seen.bus, "payment/charge card failed: card declined"));
    CHECK_FALSE(has(seen.bus, "payment/charge card ok"));
    CHECK(has(seen.saga, "start OrderPlaced:2 order/place order ok"));
    CHECK(has(seen.saga, "step OrderPlaced:2 product/reserve stock ok"));
    CHECK(has(seen.saga, "step OrderPlaced:2 payment/charge card failed: card declined"));
    CHECK(has(seen.saga, "compensation OrderPlaced:2 product/reserve stock ok"));
    CHECK(has(seen.saga, "compensation OrderPlaced:2 order/place order ok"));
}

TEST_CASE("a saga incident handler that throws does not lose its incident") {
    choreo::bus bus{{.threads = 1}};
    memory_store store;
    runtime sagas{bus, store, {.on_incident = [](const saga_incident&) { throw std::runtime_error("oops"); }}};
    table orders, payments;
    participant order{sagas, "order", orders};
    participant payment{sagas, "payment", payments};
    order.starts<order_placed>("place order", [](const order_placed&, step_context&) {});
    payment.step<order_placed>("charge card",
                               [](const order_placed&, step_context&) { throw std::runtime_error("card declined"); });
    test_support::stderr_capture err;
    auto unit = bus.begin(orders);
    (void)order.start(unit, order_placed{3}, "3");
    unit.commit();
    sagas.drain();
    auto printed = err.text();
    INFO(printed);
    CHECK(printed.find("the incident handler threw (oops)") != std::string::npos);
    CHECK(printed.find("step_failed: OrderPlaced:3 [payment/charge card]: card declined") != std::string::npos);
}
