#include <choreo/choreo.hpp>

#include <fmt/core.h>

// Events are plain structs: no base class, no macro.
struct order_placed {
    int order_id;
    long amount;
};
struct stock_reserved {
    int order_id;
};

// Your transactional resource: anything with begin(), commit() and rollback().
struct database {
    void begin() { fmt::print("BEGIN\n"); }
    void commit() { fmt::print("COMMIT\n"); }
    void rollback() { fmt::print("ROLLBACK\n"); }
};

int main() {
    choreo::bus bus;

    // Inside the transaction: an exception here rolls everything back. What it
    // publishes joins the same commit.
    auto reserve = bus.subscribe<order_placed>(
        [&](const order_placed& e) {
            fmt::print("reserve stock for order {}\n", e.order_id);
            bus.publish(stock_reserved{e.order_id});
        },
        {.name = "reserve stock", .when = choreo::phase::before_commit});

    // After the commit, on the bus's thread pool: a slow or failing call here never
    // rolls the order back.
    auto notify = bus.subscribe<stock_reserved>(
        [](const stock_reserved& e, const choreo::envelope& env) {
            fmt::print("tell the data platform about order {} (caused by event {})\n", e.order_id, env.causation_id);
        },
        {.name = "notify data platform", .when = choreo::phase::after_commit, .mode = choreo::delivery::asynchronous});

    database db;
    auto unit = bus.begin(db);
    bus.publish(order_placed{42, 1990});
    unit.commit();
    bus.drain();
}
