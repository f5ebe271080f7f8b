#include <choreo/choreo.hpp>

#include <fmt/core.h>

#include <map>
#include <stdexcept>
#include <string>

struct order_placed {
    int order_id;
    long quantity;
    long amount;
};
struct stock_reserved {
    int order_id;
    long amount;
};

// Each context's own database: here a map with real begin/commit/rollback.
struct database {
    std::map<std::string, long> rows, saved;
    void begin() { saved = rows; }
    void commit() {}
    void rollback() { rows = saved; }
};

int main() {
    using namespace choreo::saga;
    choreo::bus bus;
    memory_store store; // the rollback-state store; Redis in a distributed deployment
    runtime sagas{bus, store, {.on_incident = [](const saga_incident& i) {
                      if (i.kind == saga_incident_kind::step_failed) fmt::print("  {} failed: {}\n", i.step, i.message);
                  }}};

    database orders, products, payments;
    products.rows["widget"] = 5;
    participant order{sagas, "order", orders};
    participant product{sagas, "product", products};
    participant payment{sagas, "payment", payments};

    order.starts<order_placed>("place order", [&](const order_placed& e, step_context&) {
        orders.rows[fmt::format("order {}", e.order_id)] = 0;
        fmt::print("  order {} cancelled\n", e.order_id);
    });
    product.step<order_placed>(
        "reserve stock",
        [&](const order_placed& e, step_context& saga) {
            saga.hold("product:widget"); // a second saga on this product waits until this one ends
            products.rows["widget"] -= e.quantity;
            fmt::print("  reserved {} widgets, {} left\n", e.quantity, products.rows["widget"]);
            saga.publish(stock_reserved{e.order_id, e.amount}); // carries the saga key
        },
        [&](const order_placed& e, step_context&) {
            products.rows["widget"] += e.quantity;
            fmt::print("  put {} widgets back, {} left\n", e.quantity, products.rows["widget"]);
        });
    payment.step<stock_reserved>("charge card", [&](const stock_reserved& e, step_context& saga) {
        if (e.amount > 1000) throw std::runtime_error("card declined");
        payments.rows[fmt::format("order {}", e.order_id)] = e.amount;
        fmt::print("  charged {}\n", e.amount);
        saga.complete_saga();
    });

    for (auto [id, amount] : {std::pair{1, 300L}, std::pair{2, 5000L}}) {
        fmt::print("order {}:\n", id);
        auto unit = bus.begin(orders);
        orders.rows[fmt::format("order {}", id)] = amount;
        auto key = order.start(unit, order_placed{id, 2, amount}, std::to_string(id));
        unit.commit();
        sagas.drain();
        auto state = sagas.state(key);
        fmt::print("  saga {}: {}{}\n", key.view(), to_string(state->status),
                   state->reason.empty() ? "" : " (" + state->reason + ")");
    }
}
