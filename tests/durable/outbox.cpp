// The outbox's contract on SQLite: rows exist if and only if the business change
// committed, the relay delivers them after commit and on restart, retries, fails and
// resubmits, and keeps going past corrupt rows; misuse, a newer schema and a full disk are
// refused clearly. Several relays and asynchronous listeners: outbox_relay.cpp.

#include "support.hpp"

#include "../support/fault_log.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using namespace durable_test;
using choreo::durable::outbox;
using choreo::sqlite::database;
using choreo::sqlite::outbox_store;

TEST_CASE("a committed event reaches its durable listener after the commit, with its envelope") {
    scratch_dir dir;
    choreo::bus bus{quiet_bus()};
    database db{dir.file("shop.db")};
    create_orders_table(db);
    outbox_store store{db};
    outbox relay{bus, store};
    received got;
    relay.subscribe<order_paid>([&](const order_paid& e, const choreo::envelope& env) { got.add(e, env); },
                                {.name = "send to data platform"});
    choreo::event_id published;
    auto spy = bus.subscribe<order_paid>([&](const order_paid&, const choreo::envelope& env) { published = env.id; });
    relay.start();

    {
        auto unit = bus.begin(db);
        insert_order(db, 7, 300);
        unit.publish(order_paid{7, 300, "kim"}, choreo::correlation_key{"order:7"});
        CHECK(got.size() == 0); // nothing before the commit
        unit.commit();
    }
    REQUIRE(eventually([&] { return got.size() == 1; }));
    CHECK(got.events[0].order_id == 7);
    CHECK(got.events[0].amount == 300);
    CHECK(got.events[0].customer == "kim");
    CHECK(got.envelopes[0].id == published);
    CHECK(got.envelopes[0].key.view() == "order:7");
    CHECK(got.envelopes[0].type_name == choreo::event_type_name<order_paid>());
    REQUIRE(eventually([&] { return relay.counts().delivered == 1; }));
    CHECK(relay.counts() == choreo::durable::outbox_counts{0, 1, 0});
}

TEST_CASE("a rolled-back or aborted unit of work leaves no outbox row and delivers nothing") {
    scratch_dir dir;
    choreo::bus bus{quiet_bus()};
    database db{dir.file("shop.db")};
    create_orders_table(db);
    outbox_store store{db};
    outbox relay{bus, store};
    received got;
    relay.subscribe<order_paid>([&](const order_paid& e, const choreo::envelope& env) { got.add(e, env); },
                                {.name = "send to data platform"});
    relay.start();

    {
        auto unit = bus.begin(db);
        insert_order(db, 1, 100);
        unit.publish(order_paid{1, 100, "kim"});
        unit.rollback();
    }
    {
        auto unit = bus.begin(db);
        insert_order(db, 2, 100);
        unit.publish(order_paid{2, 100, "kim"});
        // destroyed without commit: rolls back
    }
    {
        // A before_commit listener that runs after the outbox wrote its row aborts the commit.
        auto veto = bus.subscribe<order_paid>([](const order_paid&) { throw std::runtime_error("stock ran out"); },
                                              {.when = choreo::phase::before_commit});
        auto unit = bus.begin(db);
        insert_order(db, 3, 100);
        unit.publish(order_paid{3, 100, "kim"});
        CHECK_THROWS_WITH_AS(unit.commit(), "stock ran out", std::runtime_error);
    }
    CHECK(relay.relay_once() == 0);
    CHECK(relay.counts() == choreo::durable::outbox_counts{0, 0, 0});
    CHECK(count_rows(db, "SELECT count(*) FROM orders") == 0);
    CHECK(count_rows(db, "SELECT count(*) FROM choreo_outbox") == 0);
    CHECK(got.size() == 0);
}

TEST_CASE("an event with durable listeners published outside a unit of work is refused, not lost") {
    scratch_dir dir;
    choreo::bus bus{quiet_bus()};
    database db{dir.file("shop.db")};
    outbox_store store{db};
    outbox relay{bus, store};
    relay.subscribe<order_paid>([](const order_paid&) {}, {.name = "send"});
    CHECK_THROWS_AS(bus.publish(order_paid{1, 1, "kim"}), choreo::no_transaction_error);
}

namespace {
// Two databases on one bus, an outbox with a durable listener on the first ("orders").
struct two_databases {
    scratch_dir dir;
    choreo::bus bus{quiet_bus()};
    database orders{dir.file("orders.db")};
    database other{dir.file("other.db")};
    outbox_store store{orders};
    outbox<outbox_store> relay{bus, store, {.relay = false}};
    two_databases() {
        create_orders_table(orders);
        create_orders_table(other);
        relay.subscribe<order_paid>([](const order_paid&) {}, {.name = "send"});
    }
};
} // namespace

TEST_CASE("rows of a unit on another database are written by that database's outbox") {
    two_databases t;
    choreo::bus& bus = t.bus;
    database &orders = t.orders, &other = t.other;
    outbox_store other_store{other};
    outbox other_relay{bus, other_store, {.relay = false}};
    other_relay.subscribe<order_paid>([](const order_paid&) {}, {.name = "send"});
    pay(bus, other, 1, 10);
    pay(bus, orders, 2, 10);
    CHECK(count_rows(orders, "SELECT count(*) FROM choreo_outbox") == 1);
    CHECK(count_rows(orders, "SELECT json_extract(payload, '$.order_id') FROM choreo_outbox") == 2);
    CHECK(count_rows(other, "SELECT json_extract(payload, '$.order_id') FROM choreo_outbox") == 1);
}

TEST_CASE("an event committed where no outbox writes it fails the commit instead of reaching no durable listener") {
    two_databases t;
    choreo::bus& bus = t.bus;
    database &orders = t.orders, &other = t.other;
    SUBCASE("a unit on another database: rolled back, the caller told why") {
        CHECK_THROWS_WITH_AS(pay(bus, other, 1, 10),
                             doctest::Contains("durable listener(s) 'send' of outbox 'relay' would never receive it"),
                             choreo::usage_error);
        CHECK(count_rows(other, "SELECT count(*) FROM orders") == 0);
    }
    SUBCASE("a unit with no resource") {
        auto unit = bus.begin();
        unit.publish(order_paid{1, 10, "kim"});
        CHECK_THROWS_WITH_AS(unit.commit(), doctest::Contains("with no resource"), choreo::usage_error);
    }
    SUBCASE("covered while the other database's outbox lives, refused once it is gone") {
        outbox_store other_store{other};
        {
            outbox other_relay{bus, other_store, {.relay = false}};
            other_relay.subscribe<order_paid>([](const order_paid&) {}, {.name = "send"});
            CHECK_NOTHROW(pay(bus, other, 1, 10));
        }
        CHECK_THROWS_AS(pay(bus, other, 2, 10), choreo::usage_error);
        CHECK(count_rows(other, "SELECT count(*) FROM orders") == 1);
    }
    CHECK(count_rows(orders, "SELECT count(*) FROM choreo_outbox") == 0);
}

TEST_CASE("one row per durable listener; each is delivered and recorded on its own") {
    scratch_dir dir;
    choreo::bus bus{quiet_bus()};
    database db{dir.file("shop.db")};
    create_orders_table(db);
    outbox_store store{db};
    outbox relay{bus, store};
    received platform, mail;
    std::atomic<int> cancelled{0};
    relay.subscribe<order_paid>([&](const order_paid& e, const choreo::envelope& env) { platform.add(e, env); },
                                {.name = "send to data platform"});
    relay.subscribe<order_paid>([&](const order_paid& e, const choreo::envelope& env) { mail.add(e, env); },
                                {.name = "mail the receipt"});
    relay.subscribe<order_cancelled>([&](const order_cancelled&) { ++cancelled; }, {.name = "send to data platform"});
    relay.start();
    {
        auto unit = bus.begin(db);
        unit.publish(order_paid{1, 10, "kim"});
        unit.publish(order_cancelled{1});
        unit.commit();
    }
    REQUIRE(eventually([&] { return relay.counts().delivered == 3; }));
    CHECK(platform.size() == 1);
    CHECK(mail.size() == 1);
    CHECK(cancelled == 1);
}

TEST_CASE("rows left by a run that stopped are delivered when the next run starts") {
    scratch_dir dir;
    choreo::bus bus{quiet_bus()};
    database db{dir.file("shop.db")};
    create_orders_table(db);
    outbox_store store{db};
    {
        // A writer-only run: the process died before relaying.
        outbox writer{bus, store, {.relay = false}};
        writer.subscribe<order_paid>([](const order_paid&) { FAIL("the writer-only run must not deliver"); },
                                     {.name = "send"});
        writer.start();
        for (int i = 1; i <= 5; ++i) pay(bus, db, i, 10 * i);
    }
    // A run that claimed rows and was killed before settling them.
    CHECK(store.claim("relay", 2, std::chrono::system_clock::now(), std::chrono::hours{1}).size() == 2);

    outbox next{bus, store};
    received got;
    next.subscribe<order_paid>([&](const order_paid& e, const choreo::envelope& env) { got.add(e, env); },
                               {.name = "send"});
    next.start();
    REQUIRE(eventually([&] { return got.size() == 5; }));
    std::set<std::int64_t> orders;
    for (const auto& e : got.events) orders.insert(e.order_id);
    CHECK(orders == std::set<std::int64_t>{1, 2, 3, 4, 5});
    REQUIRE(eventually([&] { return next.counts().delivered == 5; }));
}

TEST_CASE("a failing listener is retried, then its row fails; failed rows can be listed and resubmitted") {
    scratch_dir dir;
    incident_log incidents;
    choreo::bus bus{incidents.bus_options()};
    database db{dir.file("shop.db")};
    create_orders_table(db);
    outbox_store store{db};
    outbox relay{bus, store, {.poll_interval = std::chrono::milliseconds{5}}};
    std::atomic<int> calls{0};
    std::atomic<bool> platform_up{false};
    relay.subscribe<order_paid>(
        [&](const order_paid&) {
            ++calls;
            if (!platform_up) throw std::runtime_error("data platform unreachable");
        },
        {.name = "send to data platform",
         .retry = {.immediate_retries = 1, .delayed_retries = 2, .initial_delay = std::chrono::milliseconds{1}}});
    relay.start();
    pay(bus, db, 1, 10);

    REQUIRE(eventually([&] { return relay.counts().failed == 1; }));
    CHECK(calls == 6); // 3 rounds of 2 attempts
    {
        std::lock_guard lock{incidents.mutex};
        CHECK(std::count(incidents.kinds.begin(), incidents.kinds.end(), choreo::incident_kind::listener_failed) == 5);
        CHECK(std::count(incidents.kinds.begin(), incidents.kinds.end(), choreo::incident_kind::retries_exhausted) ==
              1);
    }
    auto failed = relay.failed();
    REQUIRE(failed.size() == 1);
    CHECK(failed[0].listener == "send to data platform");
    CHECK(failed[0].event_type == choreo::event_type_name<order_paid>());
    CHECK(failed[0].attempts == 3);
    CHECK(failed[0].last_error == "data platform unreachable");
    CHECK(failed[0].state == choreo::durable::row_state::failed);

    CHECK_FALSE(relay.resubmit(failed[0].id + 1000));
    platform_up = true;
    CHECK(relay.resubmit(failed[0].id));
    REQUIRE(eventually([&] { return relay.counts().delivered == 1; }));
    CHECK(calls == 7);
    CHECK(relay.counts().failed == 0);
    CHECK_FALSE(relay.resubmit(failed[0].id)); // delivered now, not failed
}

TEST_CASE("a permanent error fails the row at once") {
    scratch_dir dir;
    choreo::bus bus{quiet_bus()};
    database db{dir.file("shop.db")};
    create_orders_table(db);
    outbox_store store{db};
    outbox relay{bus, store, {.relay = true}};
    std::atomic<int> calls{0};
    relay.subscribe<order_paid>(
        [&](const order_paid&) {
            ++calls;
            throw choreo::permanent_error("customer unknown to the data platform");
        },
        {.name = "send", .retry = {.immediate_retries = 3, .delayed_retries = 3}});
    relay.start();
    pay(bus, db, 1, 10);
    REQUIRE(eventually([&] { return relay.counts().failed == 1; }));
    CHECK(calls == 1);
    CHECK(relay.failed()[0].last_error == "customer unknown to the data platform");
    CHECK(relay.resubmit_failed() == 1);
    REQUIRE(eventually([&] { return calls == 2 && relay.counts().failed == 1; }));
}

TEST_CASE("corrupt and unknown rows fail with a clear reason and the relay keeps going") {
    scratch_dir dir;
    choreo::bus bus{quiet_bus()};
    database db{dir.file("shop.db")};
    create_orders_table(db);
    outbox_store store{db};
    outbox relay{bus, store};
    received got;
    relay.subscribe<order_paid>([&](const order_paid& e, const choreo::envelope& env) { got.add(e, env); },
                                {.name = "send", .retry = {.delayed_retries = 0}});
    const std::string type{choreo::event_type_name<order_paid>()};
    const std::string id = "0123456789abcdef0123456789abcdef";
    auto add_row = [&](const std::string& event_type, const std::string& listener, const std::string& event_id,
                       const std::string& payload) {
        db.transact([&] {
            choreo::sqlite::statement insert{db,
                                             "INSERT INTO choreo_outbox (event_type, listener, event_id, causation_id, "
                                             "correlation_key, event_time, payload) VALUES (?, ?, ?, ?, '', 0, ?)"};
            insert.bind(event_type, listener, event_id, std::string(32, '0'), payload).run();
        });
    };
    add_row(type, "send", id, "{not json");
    add_row(type, "send", id, R"({"order_id":"seven","amount":1,"customer":"kim"})");
    add_row(type, "send", "not-an-id", R"({"order_id":1,"amount":1,"customer":"kim"})");
    add_row(type, "a listener since renamed", id, R"({"order_id":1,"amount":1,"customer":"kim"})");
    add_row("some::event_from_elsewhere", "send", id, "{}");
    pay(bus, db, 9, 90);
    relay.start();

    REQUIRE(eventually([&] { return relay.counts().failed == 5 && relay.counts().delivered == 1; }));
    REQUIRE(got.size() == 1);
    CHECK(got.events[0].order_id == 9);
    auto failed = relay.failed();
    REQUIRE(failed.size() == 5);
    CHECK(failed[0].last_error.find("cannot decode") != std::string::npos);
    CHECK(failed[0].last_error.find("not JSON") != std::string::npos);
    CHECK(failed[1].last_error.find("cannot decode") != std::string::npos);
    CHECK(failed[2].last_error == "corrupt row: event_id 'not-an-id' is not 32 hex digits");
    CHECK(failed[3].last_error.find("no durable listener named 'a listener since renamed'") != std::string::npos);
    CHECK(failed[4].last_error.find("some::event_from_elsewhere") != std::string::npos);
    for (const auto& row : failed) CHECK(row.attempts == 1);
}

TEST_CASE("misuse is refused with a clear message") {
    scratch_dir dir;
    choreo::bus bus{quiet_bus()};
    database db{dir.file("shop.db")};
    outbox_store store{db};
    outbox relay{bus, store};
    CHECK_THROWS_WITH_AS(relay.subscribe<order_paid>([](const order_paid&) {}, {}),
                         "a durable listener needs a name: rows are stored under it", choreo::usage_error);
    relay.subscribe<order_paid>([](const order_paid&) {}, {.name = "send"});
    CHECK_THROWS_AS(relay.subscribe<order_paid>([](const order_paid&) {}, {.name = "send"}), choreo::usage_error);
    relay.start();
    CHECK_THROWS_AS(relay.subscribe<order_cancelled>([](const order_cancelled&) {}, {.name = "late"}),
                    choreo::usage_error);
    CHECK_THROWS_AS((outbox{bus, store, {.relay_name = ""}}), choreo::usage_error);
    CHECK_THROWS_AS((outbox{bus, store, {.batch_size = 0}}), choreo::usage_error);
}

TEST_CASE("a database written by a newer choreo is refused, not misread") {
    scratch_dir dir;
    database db{dir.file("shop.db")};
    { outbox_store store{db}; }
    db.execute("UPDATE choreo_schema SET version = 99 WHERE component = 'outbox'");
    CHECK_THROWS_WITH_AS(outbox_store{db},
                         doctest::Contains("have schema version 99, newer than the 1 this choreo knows"),
                         choreo::sqlite::sqlite_error);
}

TEST_CASE("a full disk (simulated) refuses the unit of work clearly, keeps what committed, and writing resumes") {
    scratch_dir dir;
    choreo::bus bus{quiet_bus()};
    database db{dir.file("shop.db")};
    create_orders_table(db);
    outbox_store store{db};
    outbox relay{bus, store};
    received got;
    relay.subscribe<order_paid>([&](const order_paid& e, const choreo::envelope& env) { got.add(e, env); },
                                {.name = "send to data platform"});
    relay.start();
    pay(bus, db, 1, 100);
    REQUIRE(eventually([&] { return got.size() == 1; }));

    // The disk fills up: the database file may not grow past the pages it has now.
    auto pages = count_rows(db, "PRAGMA page_count");
    db.execute("PRAGMA max_page_count = " + std::to_string(pages + 2));
    std::vector<std::int64_t> committed{1};
    std::int64_t refused = 0;
    std::string reason;
    for (std::int64_t id = 2; id < 500 && refused == 0; ++id) {
        try {
            auto unit = bus.begin(db);
            insert_order(db, id, id);
            unit.publish(order_paid{id, id, std::string(4000, 'x')}); // a large row fills pages fast
            unit.commit();
            committed.push_back(id);
        } catch (const std::exception& e) {
            refused = id;
            reason = e.what();
        }
    }
    REQUIRE(refused != 0);
    MESSAGE("disk full at order " << refused << ": " << reason);
    CHECK(reason.find("full") != std::string::npos);
    // The refused unit left nothing behind: not its order, not its outbox row.
    CHECK(count_rows(db, "SELECT COUNT(*) FROM orders WHERE id = " + std::to_string(refused)) == 0);
    CHECK(count_rows(db, "SELECT COUNT(*) FROM orders") == static_cast<std::int64_t>(committed.size()));

    // Space comes back: the refused order is placed again, and every committed event is
    // delivered, each once.
    db.execute("PRAGMA max_page_count = 1073741823");
    pay(bus, db, refused, refused);
    committed.push_back(refused);
    REQUIRE(eventually([&] { return got.size() >= committed.size() && relay.counts().pending == 0; }));
    std::lock_guard lock{got.mutex};
    std::map<std::int64_t, int> times;
    for (auto& e : got.events) ++times[e.order_id];
    bool held = got.events.size() == committed.size();
    for (auto id : committed) {
        CHECK_MESSAGE(times[id] == 1, "order " << id);
        held = held && times[id] == 1;
    }
    CHECK(got.events.size() == committed.size());
    test_support::record_fault("outbox (SQLite)", "disk full (max_page_count) mid-run", "one process", 1,
                               held && reason.find("full") != std::string::npos,
                               "the unit refused with a clear error, nothing half-written, every committed event "
                               "delivered once after space returned");
}
