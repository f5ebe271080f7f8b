// Uses the core and the saga layer through the installed or added target alone.
#include <choreo/choreo.hpp>

#include <fmt/core.h>

struct order_placed {
    int id;
};

int main() {
    choreo::bus bus{{.threads = 1}};
    int committed = 0;
    auto listener = bus.subscribe<order_placed>([&](const order_placed& e) { committed += e.id; },
                                                {.name = "count", .when = choreo::phase::after_commit});
    choreo::no_resource db;
    auto unit = bus.begin(db);
    bus.publish(order_placed{42});
    unit.commit();

    choreo::saga::memory_store store;
    bool created = store.create("order_placed:42", {}, {}, "order/place", choreo::saga::step_state::done);

    if (committed != 42 || !created) return 1;
    fmt::print("consumer ok with choreo {}.{}.{}\n", CHOREO_VERSION_MAJOR, CHOREO_VERSION_MINOR, CHOREO_VERSION_PATCH);
}
