// The step journal: a participant whose process "restarts" (its bus, runtime and
// participant destroyed and made again, the database and the saga store kept) settles and
// compensates the steps it committed before, from the journal alone.

#include "../support/fault_log.hpp"
#include "support.hpp"

#include <choreo/saga.hpp>

#include <doctest/doctest.h>

#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using choreo::saga::journal_entry;
using choreo::saga::saga_status;
using choreo::saga::step_state;

namespace journal_test {

struct reservation_asked {
    std::int64_t order_id = 0;
    std::int64_t units = 0;
};
BOOST_DESCRIBE_STRUCT(reservation_asked, (), (order_id, units))

// What lasts across a restart: the context's database (its stock and journal) and the store.
struct world {
    choreo::sqlite::database db{":memory:"};
    choreo::sqlite::saga_journal<> journal{db};
    choreo::saga::memory_store store;
    world() {
        db.execute("CREATE TABLE stock (units INTEGER NOT NULL); INSERT INTO stock VALUES (10);"
                   "CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT NOT NULL)");
    }
    std::int64_t stock() {
        return db.read([&] {
            choreo::sqlite::statement q{db, "SELECT units FROM stock"};
            return q.step() ? q.integer(0) : -1;
        });
    }
    std::string order(std::int64_t id) {
        return db.read([&] {
            choreo::sqlite::statement q{db, "SELECT status FROM orders WHERE id = ?"};
            return q.bind(id).step() ? q.text(0) : std::string{"NONE"};
        });
    }
};

// One run of the process: its bus, runtime and participant, with journaled steps.
struct process {
    explicit process(world& w)
        : sagas(bus, w.store,
                {.timeout = 0ms,
                 .on_incident =
                     [this](const choreo::saga::saga_incident& i) {
                         std::lock_guard lock{incidents_mutex};
                         incidents.push_back(std::string{choreo::saga::to_string(i.kind)} + " " + std::string{i.step});
                     }}),
          shop(sagas, "shop", w.db) {
        shop.starts<reservation_asked>(
            "place",
            [&w](const reservation_asked& e, choreo::saga::step_context&) {
                choreo::sqlite::statement{w.db, "UPDATE orders SET status = 'CANCELLED' WHERE id = ?"}
                    .bind(e.order_id)
                    .run();
            },
            w.journal);
        shop.step_from<reservation_asked>(
            [this](const std::string&, const auto& d) { deliver = d; }, "reserve",
            [&w](const reservation_asked& e, choreo::saga::step_context& ctx) {
                ctx.hold("stock");
                choreo::sqlite::statement{w.db, "UPDATE stock SET units = units - ?"}.bind(e.units).run();
            },
            [&w](const reservation_asked& e, choreo::saga::step_context&) {
                choreo::sqlite::statement{w.db, "UPDATE stock SET units = units + ?"}.bind(e.units).run();
            },
            w.journal);
    }
    ~process() { sagas.drain(); }

    std::string start(world& w, std::int64_t order, std::int64_t units) {
        auto unit = bus.begin(w.db);
        choreo::sqlite::statement{w.db, "INSERT INTO orders (id, status) VALUES (?, 'PENDING')"}.bind(order).run();
        auto key = shop.start(unit, reservation_asked{order, units}, std::to_string(order));
        unit.commit();
        sagas.drain();
        return std::string{key.view()};
    }
    void reserve(const std::string& key, std::int64_t order, std::int64_t units) {
        choreo::envelope env{
            {1, 1}, {}, choreo::correlation_key{key}, std::chrono::system_clock::now(), "reservation_asked"};
        deliver(reservation_asked{order, units}, env);
        sagas.drain();
    }
    // Another process's step failed: the saga rolls back and this process hears of it.
    void roll_back(world& w, const std::string& key) {
        (void)w.store.roll_back(key, "payment declined", "payment/charge");
        bus.publish(choreo::saga::saga_rolled_back{key, "payment declined", "payment/charge"},
                    choreo::correlation_key{key});
        sagas.drain();
    }

    choreo::bus bus{{.threads = 2}};
    std::mutex incidents_mutex;
    std::vector<std::string> incidents;
    choreo::saga::runtime sagas;
    std::function<void(const reservation_asked&, const choreo::envelope&)> deliver;
    choreo::saga::participant shop;
};

// A process starts order 1's saga, its reserve step claims and commits (`units` out of
// stock, its journal row), and the process dies before telling the store: the step is
// still claimed there. Returns the saga's key.
inline std::string committed_then_died(world& w, std::int64_t units, bool completes) {
    process before{w};
    auto key = before.start(w, 1, units);
    REQUIRE(w.store.claim(key, "shop/reserve") == choreo::saga::claim_outcome::claimed);
    auto unit = before.bus.begin(w.db);
    choreo::sqlite::statement{w.db, "UPDATE stock SET units = units - ?"}.bind(units).run();
    REQUIRE(w.journal.record(key, "shop/reserve", w.journal.encode(reservation_asked{1, units}), completes, {"stock"}));
    unit.commit();
    return key;
}

} // namespace journal_test

using namespace journal_test;

TEST_CASE("after a restart, the steps a participant committed are compensated from its journal") {
    world w;
    std::string key;
    {
        process before{w};
        key = before.start(w, 1, 3);
        before.reserve(key, 1, 3);
        CHECK(w.stock() == 7);
        CHECK(w.store.get(key)->state_of("shop/reserve") == step_state::done);
    } // the process is gone, and with it every event it kept in memory
    REQUIRE(w.journal.entries(key).size() == 2);

    process after{w};
    after.roll_back(w, key);
    CHECK(w.stock() == 10);           // the reservation, from the journaled event's 3 units
    CHECK(w.order(1) == "CANCELLED"); // the start, from the journaled start event
    CHECK(w.store.status(key) == saga_status::rolled_back);
    CHECK(std::count(after.incidents.begin(), after.incidents.end(), "compensation_unavailable shop/reserve") == 0);
    // The end reached the participant: its journal rows and its marker are gone.
    CHECK(w.journal.entries(key).empty());
    CHECK(w.journal.size() == 0);
    CHECK_FALSE(w.store.holder("stock", std::chrono::system_clock::now()));
    test_support::record_fault("saga step journal",
                               "process restarted after its steps committed, then the saga rolled back",
                               "saga, one participant", 1, w.stock() == 10 && w.order(1) == "CANCELLED",
                               "the steps compensated from the journal, the saga rolled back");
}

TEST_CASE("a step claimed by a process that died before committing is abandoned, and can no longer commit") {
    world w;
    process p{w};
    auto key = p.start(w, 1, 3);
    // A delivery claimed the step, and its process died inside the transaction.
    REQUIRE(w.store.claim(key, "shop/reserve") == choreo::saga::claim_outcome::claimed);

    p.roll_back(w, key);
    CHECK(w.store.get(key)->state_of("shop/reserve") == step_state::failed);
    CHECK(w.store.status(key) == saga_status::rolled_back); // the start was compensated, nothing else to undo
    CHECK(w.order(1) == "CANCELLED");
    CHECK(w.stock() == 10);
    // The dead delivery's commit, had it been only slow, now fails on the journal: the
    // abandonment outlives the saga's other rows.
    CHECK(w.journal.entries(key).size() == 1);
    auto unit = p.bus.begin(w.db);
    bool late_commit_refused = !w.journal.record(key, "shop/reserve", "{}", false, {});
    CHECK(late_commit_refused);
    unit.rollback();
    test_support::record_fault("saga step journal", "process died inside a step's transaction", "saga, one participant",
                               1, late_commit_refused && w.stock() == 10 && w.order(1) == "CANCELLED",
                               "the step abandoned and failed, a late commit of it refused");
}

TEST_CASE("a step that committed in a process that died before recording it done is finished and compensated") {
    world w;
    // The step's transaction committed (its effect and its journal row) and the process
    // died before telling the store: the step is still claimed there.
    auto key = committed_then_died(w, 4, false);
    CHECK(w.stock() == 6);
    process after{w};
    after.roll_back(w, key);
    CHECK(w.stock() == 10);
    CHECK(w.store.get(key)->state_of("shop/reserve") == step_state::compensated);
    CHECK(w.store.status(key) == saga_status::rolled_back);
    test_support::record_fault("saga step journal", "process died between a step's commit and the store",
                               "saga, one participant", 1,
                               w.stock() == 10 && w.store.status(key) == saga_status::rolled_back,
                               "the step finished from the journal, then compensated");
}

TEST_CASE("at restart, a step that committed while its saga ran is finished, and the completion it asked for made") {
    world w;
    // The last step committed, asking to complete the saga, and its process died before
    // telling the store anything.
    auto key = committed_then_died(w, 5, true);
    const auto now = std::chrono::system_clock::now();
    REQUIRE(w.store.acquire("stock", key, now, now + 1h, now).acquired);
    process after{w};
    CHECK(after.shop.resume() == 1);
    after.sagas.drain();
    CHECK(w.store.get(key)->state_of("shop/reserve") == step_state::done);
    CHECK(w.store.status(key) == saga_status::completed);
    CHECK(w.stock() == 5);
    CHECK(w.journal.entries(key).empty()); // its end was heard: rows gone, marker released
    CHECK_FALSE(w.store.holder("stock", std::chrono::system_clock::now()));
    CHECK(after.shop.resume() == 0);
    test_support::record_fault("saga step journal",
                               "process died after the last step committed, before completing the saga",
                               "saga, one participant", 1, w.store.status(key) == saga_status::completed,
                               "resume() finished the step and completed the saga");
}

TEST_CASE("a compensation is run once, however often the rollback is heard") {
    world w;
    process p{w};
    auto key = p.start(w, 1, 2);
    p.reserve(key, 1, 2);
    p.roll_back(w, key);
    CHECK(w.stock() == 10);
    // Heard again (a stalled saga re-announced, a redelivered broadcast): nothing more.
    p.bus.publish(choreo::saga::saga_rolled_back{key, "payment declined", "payment/charge"},
                  choreo::correlation_key{key});
    p.sagas.drain();
    CHECK(w.stock() == 10);
    // The journal refuses a second mark even when asked directly.
    auto unit = p.bus.begin(w.db);
    CHECK_FALSE(w.journal.mark_compensated(key, "shop/reserve"));
    unit.rollback();
}

TEST_CASE("a delivery repeated after its step committed rolls back on the journal instead of applying twice") {
    world w;
    process p{w};
    auto key = p.start(w, 1, 2);
    p.reserve(key, 1, 2);
    CHECK(w.stock() == 8);
    // Were the store's barrier ever to let a repeat through (its record lost with a Redis
    // restarted without persistence, say), the repeat's transaction would fail here.
    auto unit = p.bus.begin(w.db);
    CHECK_FALSE(w.journal.record(key, "shop/reserve", "{}", false, {}));
    unit.rollback();
    CHECK_THROWS_AS(w.journal.record(key, "shop/other", "{}", false, {}), choreo::usage_error); // outside a transaction
}
