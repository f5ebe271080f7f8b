// Relays on a PostgreSQL outbox: rows another process commits wake a relay through
// LISTEN/NOTIFY (its poll interval is an hour here, so only the notification can deliver
// them in time), also after the server restarted; a relay's own commits send none.

#include "support.hpp"

#include <doctest/doctest.h>

using namespace postgresql_test;
using namespace std::chrono_literals;
using choreo::postgresql::database;
using choreo::postgresql::outbox_store;
using choreo::postgresql::outbox_wakeup;
using durable_test::order_paid;

namespace {

// Another process: a bus and a connection of its own on the same database, writing orders
// and their events through an outbox whose relay does not run here.
struct writer {
    explicit writer(const std::string& conninfo) : db{conninfo}, store{db}, relay{bus, store} {
        relay.subscribe<order_paid>([](const order_paid&, const choreo::envelope&) {}, {.name = "ship"});
    }
    void pay(std::int64_t id) {
        auto unit = bus.begin(db);
        (void)db.query("INSERT INTO orders (id, amount) VALUES ($1, $2)", {id, std::int64_t{100}});
        unit.publish(order_paid{id, 100, "kim"});
        unit.commit();
    }
    choreo::bus bus{durable_test::quiet_bus()};
    database db;
    outbox_store store;
    choreo::durable::outbox<outbox_store> relay;
};

// The relaying process: its relay polls once an hour.
struct relaying {
    explicit relaying(const std::string& conninfo) : db{conninfo}, store{db}, relay{bus, store, {.poll_interval = 1h}} {
        relay.subscribe<order_paid>([this](const order_paid& e, const choreo::envelope& env) { got.add(e, env); },
                                    {.name = "ship"});
        relay.start();
    }
    choreo::bus bus{durable_test::quiet_bus()};
    database db;
    outbox_store store;
    choreo::durable::outbox<outbox_store> relay;
    durable_test::received got;
};

} // namespace

TEST_CASE("postgresql: rows another process commits wake the relay through NOTIFY, without its poll") {
    postgresql_backend b;
    relaying there{b.conninfo};
    outbox_wakeup wakeup{b.conninfo, [&] { there.relay.poke(); }};
    CHECK(wakeup.channel().starts_with("choreo_outbox:test_"));
    writer here{b.conninfo};
    here.pay(1);
    REQUIRE(durable_test::eventually([&] { return there.got.size() == 1; }));
    here.pay(2);
    here.pay(3);
    REQUIRE(durable_test::eventually([&] { return there.got.size() == 3; }));
    CHECK(wakeup.wakes() >= 1);
    CHECK(wakeup.wake_failures() == 0);
    CHECK(there.relay.counts() == choreo::durable::outbox_counts{0, 3, 0});
}

TEST_CASE("postgresql: a relay's own commits reach it from memory and notify no one") {
    postgresql_backend b;
    relaying there{b.conninfo};
    outbox_wakeup wakeup{b.conninfo, [&] { there.relay.poke(); }};
    {
        auto unit = there.bus.begin(there.db);
        (void)there.db.query("INSERT INTO orders (id, amount) VALUES (1, 100)");
        unit.publish(order_paid{1, 100, "kim"});
        unit.commit();
    }
    REQUIRE(durable_test::eventually([&] { return there.got.size() == 1; }));
    // A row another process commits afterwards is notified; had the first been, it would
    // have been notified before this one, on the same connection.
    writer here{b.conninfo};
    here.pay(2);
    REQUIRE(durable_test::eventually([&] { return there.got.size() == 2; }));
    CHECK(wakeup.notifications() == 1);
}

TEST_CASE("postgresql: after the server restarted, the wakeup listens again and wakes once for what it missed") {
    test_support::postgresql_server server;
    {
        database setup{server.conninfo()};
        (void)setup.execute("CREATE TABLE orders (id BIGINT PRIMARY KEY, amount BIGINT NOT NULL)");
    }
    relaying there{server.conninfo()};
    outbox_wakeup wakeup{server.conninfo(), [&] { there.relay.poke(); }};
    server.stop();
    server.start();
    REQUIRE(durable_test::eventually([&] { return wakeup.reconnections() == 1; }));
    writer here{server.conninfo()};
    here.pay(1);
    REQUIRE(durable_test::eventually([&] { return there.got.size() == 1; }));
}

TEST_CASE("postgresql: an outbox_wakeup needs a function, and a server to listen on") {
    postgresql_backend b;
    CHECK_THROWS_AS(outbox_wakeup(b.conninfo, nullptr), choreo::usage_error);
    test_support::postgresql_server server;
    auto conninfo = server.conninfo();
    server.stop();
    CHECK_THROWS_AS(outbox_wakeup(conninfo, [] {}), choreo::postgresql::postgresql_error);
}
