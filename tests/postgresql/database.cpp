// The PostgreSQL database resource: units of work commit and roll back with their listeners'
// phases; failures are classified (a statement's error, a transaction that failed before its
// commit, a statement timeout, a conflict retried, a lost connection and the reconnection
// after the server restarted); a newer schema is refused.

#include "support.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace postgresql_test;
using choreo::postgresql::database;
using choreo::postgresql::failure;
using choreo::postgresql::postgresql_error;

namespace {

// The failure kind of what `work` throws; fails the test when it throws nothing else.
template <class F>
failure failure_of(F&& work) {
    try {
        work();
    } catch (const postgresql_error& e) {
        return e.kind();
    }
    FAIL("no postgresql_error");
    return failure::other;
}

struct noted {
    int order = 0;
};

} // namespace

TEST_CASE("postgresql: a unit of work commits with its after_commit listeners, and a rollback leaves nothing") {
    postgresql_backend b;
    choreo::bus bus{durable_test::quiet_bus()};
    std::vector<std::string> heard;
    auto committed =
        bus.subscribe<noted>([&](const noted& n) { heard.push_back("committed " + std::to_string(n.order)); },
                             {.when = choreo::phase::after_commit});
    auto rolled_back =
        bus.subscribe<noted>([&](const noted& n) { heard.push_back("rolled back " + std::to_string(n.order)); },
                             {.when = choreo::phase::after_rollback});
    {
        auto unit = bus.begin(b.db);
        b.insert_order(1, 100);
        unit.publish(noted{1});
        unit.commit();
    }
    {
        auto unit = bus.begin(b.db);
        b.insert_order(2, 200);
        unit.publish(noted{2});
    } // not committed: rolled back
    CHECK(heard == std::vector<std::string>{"committed 1", "rolled back 2"});
    CHECK(b.orders() == 1);
    CHECK_FALSE(b.db.in_transaction());
}

TEST_CASE("postgresql: a failed statement names its SQLSTATE, and a transaction that went on after it does not "
          "commit") {
    postgresql_backend b;
    b.insert_order(1, 100);
    try {
        b.insert_order(1, 100);
        FAIL("a duplicate key was accepted");
    } catch (const postgresql_error& e) {
        CHECK(e.kind() == failure::other);
        CHECK(e.sqlstate() == "23505");
        CHECK(std::string{e.what()}.find("INSERT INTO orders") != std::string::npos);
    }
    b.db.begin();
    b.insert_order(2, 200);
    CHECK_THROWS_AS(b.insert_order(1, 100), postgresql_error); // the caller swallows it and commits
    CHECK(failure_of([&] { b.db.commit(); }) == failure::transaction_aborted);
    b.db.rollback(); // what a unit of work does after a failed commit: releases the lock
    CHECK(b.orders() == 1);
    b.insert_order(3, 300); // the connection is fine afterwards
    CHECK(b.orders() == 2);
}

TEST_CASE("postgresql: a statement past statement_timeout is a statement_timeout") {
    postgresql_backend b;
    (void)b.db.execute("SET statement_timeout = 50");
    CHECK(failure_of([&] { (void)b.db.execute("SELECT pg_sleep(5)"); }) == failure::statement_timeout);
    (void)b.db.execute("SET statement_timeout = 0");
    CHECK(b.orders() == 0);
}

TEST_CASE("postgresql: transact() runs its work again after a conflict, and not after anything else") {
    postgresql_backend b;
    int runs = 0;
    b.db.transact([&] {
        if (++runs == 1) throw postgresql_error(failure::conflict, "40001", "could not serialize access");
        b.insert_order(1, 100);
    });
    CHECK(runs == 2);
    CHECK(b.orders() == 1);
    runs = 0;
    CHECK_THROWS_AS(b.db.transact([&] {
        ++runs;
        b.insert_order(1, 100); // a duplicate: not a conflict
    }),
                    postgresql_error);
    CHECK(runs == 1);
    runs = 0;
    CHECK(failure_of([&] {
              b.db.transact([&] {
                  ++runs;
                  throw postgresql_error(failure::conflict, "40P01", "deadlock detected");
              });
          }) == failure::conflict);
    CHECK(runs == 3); // three attempts in all, then the conflict is the caller's
    b.db.begin();
    CHECK_THROWS_AS(b.db.transact([] {}), choreo::usage_error); // nested in a unit of work
    b.db.rollback();
}

TEST_CASE("postgresql: SQLSTATEs map to failure kinds") {
    using choreo::postgresql::detail::failure_of;
    CHECK(failure_of("08006") == failure::connection_lost);
    CHECK(failure_of("57P01") == failure::connection_lost);
    CHECK(failure_of("40001") == failure::conflict);
    CHECK(failure_of("40P01") == failure::conflict);
    CHECK(failure_of("57014") == failure::statement_timeout);
    CHECK(failure_of("23505") == failure::other);
}

TEST_CASE("postgresql: a server restart is a lost connection, and the next transaction reconnects") {
    test_support::postgresql_server server;
    database db{server.conninfo()};
    (void)db.execute("CREATE TABLE orders (id BIGINT PRIMARY KEY, amount BIGINT NOT NULL)");
    (void)db.query("INSERT INTO orders VALUES ($1, $2)", {1, 100});
    server.stop();
    server.start();
    CHECK(failure_of([&] {
              (void)db.query("INSERT INTO orders VALUES ($1, $2)", {2, 200});
          }) == failure::connection_lost);
    db.transact([&] { (void)db.query("INSERT INTO orders VALUES ($1, $2)", {2, 200}); });
    CHECK(db.reconnections() == 1);
    CHECK(db.read([&] { return db.query("SELECT count(*) FROM orders").integer(0, 0); }) == 2);

    db.begin();
    (void)db.query("INSERT INTO orders VALUES ($1, $2)", {3, 300});
    server.stop();
    auto during_commit = failure_of([&] { db.commit(); });
    CHECK(during_commit == failure::connection_lost);
    db.rollback();
    server.start();
    CHECK(db.read([&] { return db.query("SELECT count(*) FROM orders").integer(0, 0); }) == 2);

    // Outside a transaction, the statement after the one that found the connection lost
    // connects again by itself.
    server.stop();
    server.start();
    CHECK(failure_of([&] {
              (void)db.query("INSERT INTO orders VALUES ($1, $2)", {3, 300});
          }) == failure::connection_lost);
    (void)db.query("INSERT INTO orders VALUES ($1, $2)", {3, 300});
    CHECK(db.reconnections() == 3);

    // Inside one, nothing connects again until it ends: the statements after the loss must
    // not commit on their own, outside the transaction they belong to.
    db.begin();
    (void)db.query("INSERT INTO orders VALUES ($1, $2)", {4, 400});
    server.stop();
    server.start();
    CHECK(failure_of([&] {
              (void)db.query("INSERT INTO orders VALUES ($1, $2)", {5, 500});
          }) == failure::connection_lost);
    CHECK(failure_of([&] {
              (void)db.query("INSERT INTO orders VALUES ($1, $2)", {6, 600});
          }) == failure::connection_lost);
    CHECK(db.in_transaction());
    db.rollback();
    CHECK(db.read([&] { return db.query("SELECT count(*) FROM orders").integer(0, 0); }) == 3);
}

TEST_CASE("postgresql: a server that cannot be reached is a connection_lost error naming it") {
    test_support::postgresql_server server;
    auto conninfo = server.conninfo();
    server.stop();
    try {
        database db{conninfo};
        FAIL("connected to a stopped server");
    } catch (const postgresql_error& e) {
        CHECK(e.kind() == failure::connection_lost);
        CHECK(std::string{e.what()}.find("cannot connect") != std::string::npos);
    }
}

TEST_CASE("postgresql: a store refuses tables of a newer schema than it knows") {
    postgresql_backend b;
    { choreo::postgresql::outbox_store first{b.db}; }
    (void)b.db.execute("UPDATE choreo_schema SET version = 99 WHERE component = 'outbox'");
    try {
        choreo::postgresql::outbox_store store{b.db};
        FAIL("a newer schema was accepted");
    } catch (const postgresql_error& e) {
        CHECK(std::string{e.what()}.find("schema version 99") != std::string::npos);
    }
    choreo::postgresql::inbox_store inbox{b.db}; // another component's tables are unaffected
}
