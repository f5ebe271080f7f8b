// Uses the core and the saga layer through the installed or added target alone; with
// CHOREO_CONSUMER_SQLITE, the outbox on SQLite through choreo::sqlite too, and with
// CHOREO_CONSUMER_REDIS a Redis connection through choreo::redis, proving that those
// targets' dependencies (Boost.JSON's library, SQLite3, hiredis) are found for the consumer.
#include <choreo/choreo.hpp>

#include <fmt/core.h>

#include <string>

#ifdef CHOREO_CONSUMER_SQLITE
#include <choreo/durable.hpp>
#include <choreo/sqlite.hpp>

#include <boost/describe/class.hpp>

#include <cstdint>
#endif

#ifdef CHOREO_CONSUMER_REDIS
#include <choreo/redis.hpp>

#include <boost/asio/io_context.hpp>

// A connection is made and a command formatted (hiredis linked), with no server needed:
// the io_context never runs, so nothing is sent.
bool redis_links() {
    auto options = choreo::redis::parse_url("redis://consumer:secret@127.0.0.1:6390/1");
    boost::asio::io_context io;
    choreo::redis::connection redis{io.get_executor(), options};
    redis.async_command({"SET", "key", "value"}, [](std::exception_ptr, choreo::redis::reply) {});
    return options.database == 1 && options.username == "consumer";
}
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
    std::string with;
#ifdef CHOREO_CONSUMER_SQLITE
    if (!outbox_delivers(bus)) return 2;
    with += " and choreo::sqlite";
#endif
#ifdef CHOREO_CONSUMER_REDIS
    if (!redis_links()) return 3;
    with += " and choreo::redis";
#endif
    fmt::print("consumer ok with choreo {}.{}.{}{}\n", CHOREO_VERSION_MAJOR, CHOREO_VERSION_MINOR, CHOREO_VERSION_PATCH,
               with);
}
