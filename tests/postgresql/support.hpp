#pragma once
// The two databases the store contract runs against, behind one face: a SQLite file in a
// scratch directory, and a schema of its own on the test binary's PostgreSQL server (started
// once, on first use). Each backend gives a business table (orders) written in the same
// transaction as the outbox rows, and new connections to the same database, for relays that
// compete.

#include "../durable/support.hpp"
#include "../support/postgresql_server.hpp"

#include <choreo/postgresql.hpp>

#include <atomic>
#include <memory>
#include <string>

namespace postgresql_test {

// The binary's PostgreSQL server, started on first use and stopped at exit.
inline test_support::postgresql_server& shared_server() {
    static test_support::postgresql_server server;
    return server;
}

struct sqlite_backend {
    using database = choreo::sqlite::database;
    using outbox_store = choreo::sqlite::outbox_store;
    using inbox_store = choreo::sqlite::inbox_store;
    using saga_journal = choreo::sqlite::saga_journal<>;
    static constexpr const char* name = "sqlite";

    durable_test::scratch_dir dir;
    database db{dir.file("shop.db")};

    sqlite_backend() { durable_test::create_orders_table(db); }
    [[nodiscard]] std::unique_ptr<database> connect() { return std::make_unique<database>(dir.file("shop.db")); }
    void insert_order(std::int64_t id, std::int64_t amount) { durable_test::insert_order(db, id, amount); }
    [[nodiscard]] std::int64_t orders() { return durable_test::count_rows(db, "SELECT count(*) FROM orders"); }
};

struct postgresql_backend {
    using database = choreo::postgresql::database;
    using outbox_store = choreo::postgresql::outbox_store;
    using inbox_store = choreo::postgresql::inbox_store;
    using saga_journal = choreo::postgresql::saga_journal<>;
    static constexpr const char* name = "postgresql";

    // Each test its own schema: the tables a test makes are its own.
    std::string conninfo = [] {
        static std::atomic<int> count{0};
        auto schema = "test_" + std::to_string(::getpid()) + "_" + std::to_string(++count);
        database admin{shared_server().conninfo()};
        (void)admin.execute("CREATE SCHEMA " + schema);
        return shared_server().conninfo() + " options=-csearch_path=" + schema;
    }();
    database db{conninfo};

    postgresql_backend() { (void)db.execute("CREATE TABLE orders (id BIGINT PRIMARY KEY, amount BIGINT NOT NULL)"); }
    [[nodiscard]] std::unique_ptr<database> connect() { return std::make_unique<database>(conninfo); }
    void insert_order(std::int64_t id, std::int64_t amount) {
        (void)db.query("INSERT INTO orders (id, amount) VALUES ($1, $2)", {id, amount});
    }
    [[nodiscard]] std::int64_t orders() {
        return db.read([&] { return db.query("SELECT count(*) FROM orders").integer(0, 0); });
    }
};

} // namespace postgresql_test
