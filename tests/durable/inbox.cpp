// The inbox: a consumer records processed event ids in its own transaction, so a
// redelivered event is recognised and its effect happens once.

#include "support.hpp"

#include <doctest/doctest.h>

#include <atomic>

using namespace durable_test;
using choreo::sqlite::database;
using choreo::sqlite::inbox_store;

TEST_CASE("the inbox records an event once per consumer, inside the consumer's transaction") {
    scratch_dir dir;
    choreo::bus bus{{.threads = 1}};
    database db{dir.file("consumer.db")};
    inbox_store inbox{db};
    const choreo::event_id id{1, 2};

    CHECK_THROWS_WITH_AS(inbox.record("points", id), doctest::Contains("must run inside the consumer's transaction"),
                         choreo::usage_error);
    {
        auto unit = bus.begin(db);
        CHECK(inbox.record("points", id));
        unit.rollback(); // the effect did not happen, so neither did the record
    }
    CHECK_FALSE(inbox.seen("points", id));
    {
        auto unit = bus.begin(db);
        CHECK(inbox.record("points", id));
        CHECK_FALSE(inbox.record("points", id));
        CHECK(inbox.record("coupons", id)); // another consumer of the same event
        unit.commit();
    }
    CHECK(inbox.seen("points", id));
    {
        auto unit = bus.begin(db);
        CHECK_FALSE(inbox.record("points", id));
        unit.commit();
    }
    CHECK(inbox.purge(std::chrono::system_clock::now() - std::chrono::hours{1}) == 0);
    CHECK(inbox.purge(std::chrono::system_clock::now() + std::chrono::seconds{1}) == 2);
    CHECK_FALSE(inbox.seen("points", id));
}

TEST_CASE("a redelivered event is skipped by the inbox: one effect") {
    scratch_dir dir;
    choreo::bus bus{{.threads = 2, .on_incident = [](const choreo::incident&) {}}};
    database shop{dir.file("shop.db")};
    database platform{dir.file("platform.db")};
    create_orders_table(shop);
    platform.execute("CREATE TABLE received (order_id INTEGER NOT NULL)");
    choreo::sqlite::outbox_store store{shop};
    inbox_store inbox{platform};
    choreo::durable::outbox relay{bus, store};
    std::atomic<int> deliveries{0};
    relay.subscribe<order_paid>(
        [&](const order_paid& e, const choreo::envelope& env) {
            ++deliveries;
            auto unit = bus.begin(platform);
            if (!inbox.record("data platform", env.id)) return; // seen: the unit rolls back, nothing to do
            choreo::sqlite::statement insert{platform, "INSERT INTO received (order_id) VALUES (?)"};
            insert.bind(e.order_id).run();
            unit.commit();
        },
        {.name = "send to data platform"});
    relay.start();
    {
        auto unit = bus.begin(shop);
        insert_order(shop, 5, 50);
        unit.publish(order_paid{5, 50, "kim"});
        unit.commit();
    }
    REQUIRE(eventually([&] { return relay.counts().delivered == 1; }));
    // As if the relay had died after the effect committed but before it recorded the
    // delivery: the row is pending again and is delivered a second time.
    shop.execute("UPDATE choreo_outbox SET state = 0, settled_at = NULL");
    relay.poke();
    REQUIRE(eventually([&] { return deliveries == 2 && relay.counts().delivered == 1; }));
    CHECK(count_rows(platform, "SELECT count(*) FROM received WHERE order_id = 5") == 1);
}
