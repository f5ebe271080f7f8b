#include <choreo/choreo.hpp>
#include <choreo/saga/testing.hpp> // the harness is not in <choreo/choreo.hpp>

#include <fmt/core.h>

#include <map>
#include <string>
#include <vector>

using namespace choreo::saga;

struct order_placed {
    int order_id;
};
struct stock_reserved {
    int order_id;
};
struct table {
    std::map<std::string, long> rows, saved;
    void begin() { saved = rows; }
    void commit() {}
    void rollback() { rows = saved; }
};

// Your contexts, built on whatever runtime they are given.
struct contexts {
    table orders, products;
    participant order, product;
    explicit contexts(runtime& sagas) : order{sagas, "order", orders}, product{sagas, "product", products} {
        products.rows["widget"] = 5;
        order.starts<order_placed>("place order",
                                   [this](const order_placed&, step_context&) { orders.rows.erase("order"); });
        product.step<order_placed>(
            "reserve stock",
            [this](const order_placed& e, step_context& saga) {
                products.rows["widget"] -= 2;
                saga.publish(stock_reserved{e.order_id});
            },
            [this](const order_placed&, step_context&) { products.rows["widget"] += 2; });
        order.step<stock_reserved>("confirm", [](const stock_reserved&, step_context& saga) { saga.complete_saga(); });
    }
    void start_saga(testing::harness& h) {
        auto unit = h.events.begin(orders);
        orders.rows["order"] = 1;
        (void)order.start(unit, order_placed{1}, "1");
        unit.commit();
    }
};

int main() {
    std::vector<std::string> steps; // every step of every participant, "participant/step"
    {
        testing::harness h;
        contexts c{h.sagas};
        steps = h.sagas.steps();
    }
    for (const auto& step : steps) {
        testing::harness h; // a fresh bus, memory store, manual clock and network per run
        contexts c{h.sagas};
        h.faults.fail(step); // the step throws on its first call
        try {
            c.start_saga(h);
        } catch (const injected_fault&) {
            // the start step runs in the caller's unit of work: its failure reaches the caller
        }
        h.settle(); // deliver everything, run due timers
        bool untouched = c.orders.rows.empty() && c.products.rows["widget"] == 5;
        auto state = h.sagas.state(std::string{"order_placed:1"});
        fmt::print("{}: {}, saga {}\n", step, untouched ? "every context as before" : "NOT AS BEFORE",
                   state ? to_string(state->status) : "never started");
    }
}
