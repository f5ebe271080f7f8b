// Uses the core and the saga layer through the installed or added target alone; with
// CHOREO_CONSUMER_SQLITE, the outbox on SQLite through choreo::sqlite too, proving that
// target's dependencies (Boost.JSON's library, SQLite3) are found for the consumer.
#include <choreo/choreo.hpp>

#include <fmt/core.h>

#ifdef CHOREO_CONSUMER_SQLITE
#include <choreo/durable.hpp>
#include <choreo/sqlite.hpp>

#include <boost/describe/class.hpp>

#include <cstdint>
#endif

struct order_placed {
    int id;
};

#ifdef CHOREO_CONSUMER_SQLITE
struct order_paid {
    std::int64_t order_id = 0;
};
BOOST_DESCRIBE_STRUCT(order_paid, (), (order_id))

// One event through a SQLite outbox in memory: written in the commit, relayed once.
bool outbox_delivers(choreo::bus& bus) {
    choreo::sqlite::database db{":memory:"};
    choreo::sqlite::outbox_store store{db};
    choreo::durable::outbox outbox{bus, store, {.relay = false}};
    std::int64_t received = 0;
    outbox.subscribe<order_paid>([&](const order_paid& e) { received = e.order_id; }, {.name = "receive"});
    auto unit = bus.begin(db);
    unit.publish(order_paid{7});
    unit.commit();
    outbox.relay_once();
    return received == 7 && outbox.counts().delivered == 1;
}
#endif

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
#ifdef CHOREO_CONSUMER_SQLITE
    if (!outbox_delivers(bus)) return 2;
    const char* with = " and choreo::sqlite";
#else
    const char* with = "";
#endif
    fmt::print("consumer ok with choreo {}.{}.{}{}\n", CHOREO_VERSION_MAJOR, CHOREO_VERSION_MINOR,
               CHOREO_VERSION_PATCH, with);
}
