// The SQLite resource as a unit of work sees it.

#include "../durable/support.hpp"

#include <doctest/doctest.h>

using namespace durable_test;
using choreo::sqlite::database;

TEST_CASE("a second unit of work begun on the same SQLite connection is refused, and the first goes on") {
    scratch_dir dir;
    choreo::bus bus{{.threads = 1}};
    database db{dir.file("shop.db")};
    create_orders_table(db);
    auto outer = bus.begin(db);
    insert_order(db, 1, 10);
    CHECK_THROWS_WITH_AS((void)bus.begin(db), doctest::Contains("cannot start a transaction within a transaction"),
                         choreo::sqlite::sqlite_error);
    outer.commit();
    CHECK(count_rows(db, "SELECT count(*) FROM orders") == 1);
}
