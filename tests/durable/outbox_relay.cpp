// The relay and its own commits (include/choreo/durable/impl/outbox_relay.hpp): on a store
// that claims_on_append, the rows a commit writes are claimed by the relay already and
// reach it from memory, with no claim transaction per commit; a unit of work that rolls back
// hands it nothing; rows written claimed by a run that died are delivered by the next run.

#include "support.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using namespace durable_test;
using choreo::durable::outbox;
using choreo::sqlite::database;

namespace {

// The SQLite outbox store, counting the claims the relay makes; with `claiming` false it
// has no append_claimed (a store of the plain concept).
template <bool claiming>
class counting_store {
public:
    explicit counting_store(choreo::sqlite::outbox_store& inner) : inner_(inner) {}

    [[nodiscard]] database& resource() const noexcept { return inner_.resource(); }
    void append(const choreo::durable::outbox_message& message) { inner_.append(message); }
    std::int64_t append_claimed(const choreo::durable::outbox_message& message, std::string_view relay,
                                std::chrono::system_clock::time_point until) requires claiming {
        return inner_.append_claimed(message, relay, until);
    }
    std::vector<choreo::durable::outbox_row> claim(std::string_view relay, std::size_t limit,
                                                   std::chrono::system_clock::time_point now,
                                                   std::chrono::milliseconds lease) {
        ++claims;
        return inner_.claim(relay, limit, now, lease);
    }
    void settle(std::span<const choreo::durable::settlement> settled) { inner_.settle(settled); }
    std::size_t release(std::string_view relay) { return inner_.release(relay); }
    choreo::durable::outbox_counts counts() { return inner_.counts(); }
    std::vector<choreo::durable::outbox_row> failed(std::size_t limit) { return inner_.failed(limit); }
    bool resubmit(std::int64_t id) { return inner_.resubmit(id); }
    std::size_t resubmit_failed() { return inner_.resubmit_failed(); }
    std::size_t purge_delivered(std::chrono::system_clock::time_point before) { return inner_.purge_delivered(before); }

    std::atomic<int> claims{0};

private:
    choreo::sqlite::outbox_store& inner_;
};
static_assert(choreo::durable::claims_on_append<counting_store<true>>);
static_assert(!choreo::durable::claims_on_append<counting_store<false>>);
static_assert(choreo::durable::claims_on_append<choreo::sqlite::outbox_store>);

struct delivered_orders {
    std::mutex mutex;
    std::vector<std::int64_t> orders;

    void add(const order_paid& e) {
        std::lock_guard lock{mutex};
        orders.push_back(e.order_id);
    }
    std::size_t size() {
        std::lock_guard lock{mutex};
        return orders.size();
    }
};

choreo::bus_options quiet_bus() {
    return {.threads = 2, .on_incident = [](const choreo::incident&) {}};
}

void pay(choreo::bus& bus, database& db, std::int64_t order) {
    auto unit = bus.begin(db);
    insert_order(db, order, 10);
    unit.publish(order_paid{order, 10, "kim"});
    unit.commit();
}

// Commits `count` payments one at a time, each delivered before the next; returns the
// claims the relay made meanwhile.
template <bool claiming>
int claims_for_commits(int count) {
    scratch_dir dir;
    choreo::bus bus{quiet_bus()};
    database db{dir.file("shop.db")};
    create_orders_table(db);
    choreo::sqlite::outbox_store sqlite_store{db};
    counting_store<claiming> store{sqlite_store};
    // The poll comes once an hour: every pass below is a commit's.
    outbox relay{bus, store, {.poll_interval = std::chrono::hours{1}}};
    delivered_orders got;
    relay.template subscribe<order_paid>([&](const order_paid& e) { got.add(e); }, {.name = "send"});
    relay.start();
    REQUIRE(eventually([&] { return store.claims.load() >= 1; })); // the first pass, at start
    for (int i = 1; i <= count; ++i) {
        pay(bus, db, i);
        REQUIRE(eventually([&] { return got.size() == static_cast<std::size_t>(i); }));
    }
    REQUIRE(eventually([&] { return relay.counts().delivered == static_cast<std::uint64_t>(count); }));
    CHECK(relay.counts().pending == 0);
    relay.stop();
    std::set<std::int64_t> distinct(got.orders.begin(), got.orders.end());
    CHECK(distinct.size() == static_cast<std::size_t>(count));
    return store.claims.load();
}

} // namespace

TEST_CASE("a commit's rows reach the relay from memory: no claim per commit") {
    // Only the pass at start() claims; each commit's rows were written claimed.
    CHECK(claims_for_commits<true>(30) == 1);
    // A store without append_claimed: each commit's pass claims its rows back.
    CHECK(claims_for_commits<false>(30) >= 31);
}

TEST_CASE("a unit of work that fails at its commit hands its rows to no relay") {
    scratch_dir dir;
    choreo::bus bus{quiet_bus()};
    database db{dir.file("shop.db")};
    create_orders_table(db);
    // A child row whose parent does not exist passes every statement and fails the COMMIT.
    db.execute("CREATE TABLE parents (id INTEGER PRIMARY KEY)");
    db.execute("CREATE TABLE children (parent INTEGER REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)");
    choreo::sqlite::outbox_store store{db};
    outbox relay{bus, store};
    delivered_orders got;
    relay.subscribe<order_paid>([&](const order_paid& e) { got.add(e); }, {.name = "send"});
    relay.start();
    {
        auto unit = bus.begin(db);
        db.execute("INSERT INTO children VALUES (42)");
        unit.publish(order_paid{1, 10, "never"});
        CHECK_THROWS(unit.commit()); // the outbox row was written claimed, then rolled back
    }
    // The next row may well get the rolled-back row's id: it must be delivered, once.
    pay(bus, db, 2);
    REQUIRE(eventually([&] { return relay.counts().delivered == 1; }));
    relay.stop();
    CHECK(got.orders == std::vector<std::int64_t>{2});
    CHECK(relay.counts().pending == 0);
}

TEST_CASE("rows a run wrote claimed and never relayed are delivered by the next run") {
    scratch_dir dir;
    choreo::bus bus{quiet_bus()};
    database db{dir.file("shop.db")};
    create_orders_table(db);
    choreo::sqlite::outbox_store store{db};
    // What a process that died between its commits and its relay's pass left: rows claimed
    // by its relay for an hour.
    db.transact([&] {
        for (std::int64_t order = 1; order <= 3; ++order) {
            choreo::envelope env;
            env.id = choreo::event_id{7, static_cast<std::uint64_t>(order)};
            auto payload = choreo::durable::json_codec{}.encode(order_paid{order, 10, "kim"});
            store.append_claimed({choreo::event_type_name<order_paid>(), "send", env, payload}, "relay",
                                 std::chrono::system_clock::now() + std::chrono::hours{1});
        }
    });
    outbox next{bus, store};
    delivered_orders got;
    next.subscribe<order_paid>([&](const order_paid& e) { got.add(e); }, {.name = "send"});
    next.start(); // takes back what its earlier run held
    REQUIRE(eventually([&] { return next.counts().delivered == 3; }));
    next.stop();
    CHECK(std::set<std::int64_t>(got.orders.begin(), got.orders.end()) == std::set<std::int64_t>{1, 2, 3});
    CHECK(got.size() == 3);
}
