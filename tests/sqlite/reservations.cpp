// Reservations (escrow): sagas take from one counter side by side with no marker held; a
// completed saga's reservation becomes final, a rolled-back saga's goes back to the counter;
// misuse is refused; a process that restarts settles what completed while it was down.

#include <choreo/saga.hpp>
#include <choreo/sqlite.hpp>

#include <doctest/doctest.h>

#include <boost/describe/class.hpp>

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using choreo::saga::saga_status;

namespace reservations_test {

struct apples_wanted {
    std::int64_t order = 0;
    std::int64_t units = 0;
    bool completes = false; // the taking step completes the saga
};
BOOST_DESCRIBE_STRUCT(apples_wanted, (), (order, units, completes))

struct last_step {
    std::int64_t order = 0;
};
BOOST_DESCRIBE_STRUCT(last_step, (), (order))

// A shop's database and saga store, and one run of its process.
struct shop {
    choreo::sqlite::database db{":memory:"};
    choreo::saga::memory_store store;
    choreo::bus bus{{.threads = 2}};
    choreo::saga::runtime sagas{bus, store, {.timeout = 0ms}};
    choreo::saga::participant seller{sagas, "seller", db};
    std::optional<choreo::sqlite::reservations> ledger{std::in_place, sagas, db};
    std::function<void(const apples_wanted&, const choreo::envelope&)> take_delivery;
    std::function<void(const last_step&, const choreo::envelope&)> finish_delivery;
    // Runs inside the taking step, for a test to try the ledger there.
    std::function<void(choreo::saga::step_context&)> inside_take;

    shop() {
        db.execute("CREATE TABLE stock (units INTEGER NOT NULL CHECK (units >= 0)); INSERT INTO stock VALUES (10)");
        seller.starts<apples_wanted>("place", [](const apples_wanted&, choreo::saga::step_context&) {});
        seller.step_from<apples_wanted>(
            [this](const std::string&, const auto& d) { take_delivery = d; }, "take",
            [this](const apples_wanted& e, choreo::saga::step_context& ctx) {
                // No hold(): the check and the taking are one transaction, and others go on.
                choreo::sqlite::statement{db, "UPDATE stock SET units = units - ?"}.bind(e.units).run();
                ledger->reserve(ctx, "apples", e.units);
                if (inside_take) inside_take(ctx);
                if (e.completes) ctx.complete_saga();
            },
            [this](const apples_wanted&, choreo::saga::step_context& ctx) {
                for (auto& r : ledger->release(ctx))
                    choreo::sqlite::statement{db, "UPDATE stock SET units = units + ?"}.bind(r.amount).run();
            });
        seller.step_from<last_step>([this](const std::string&, const auto& d) { finish_delivery = d; }, "finish",
                                    [](const last_step&, choreo::saga::step_context& ctx) { ctx.complete_saga(); },
                                    [](const last_step&, choreo::saga::step_context&) {});
    }
    ~shop() { sagas.drain(); }

    std::string start(std::int64_t order, std::int64_t units, bool completes) {
        auto unit = bus.begin(db);
        auto key = seller.start(unit, apples_wanted{order, units, completes}, std::to_string(order));
        unit.commit();
        sagas.drain();
        return std::string{key.view()};
    }
    static choreo::envelope envelope_of(const std::string& key, const char* type) {
        return {{1, 1}, {}, choreo::correlation_key{key}, std::chrono::system_clock::now(), type};
    }
    void take(const std::string& key, std::int64_t order, std::int64_t units, bool completes) {
        take_delivery(apples_wanted{order, units, completes}, envelope_of(key, "apples_wanted"));
        sagas.drain();
    }
    void finish(const std::string& key, std::int64_t order) {
        finish_delivery(last_step{order}, envelope_of(key, "last_step"));
        sagas.drain();
    }
    // Another context's step failed: the saga rolls back and this process hears of it.
    void roll_back(const std::string& key) {
        (void)store.roll_back(key, "card declined", "payment/charge");
        bus.publish(choreo::saga::saga_rolled_back{key, "card declined", "payment/charge"},
                    choreo::correlation_key{key});
        sagas.drain();
    }
    std::int64_t units() {
        return db.read([&] {
            choreo::sqlite::statement q{db, "SELECT units FROM stock"};
            return q.step() ? q.integer(0) : -1;
        });
    }
};

} // namespace reservations_test

using namespace reservations_test;

TEST_CASE("reservations: sagas take from one counter side by side; completion makes it final, a rollback gives back") {
    shop s;
    auto first = s.start(1, 3, true);
    auto second = s.start(2, 4, false);
    s.take(second, 2, 4, false);
    CHECK(s.units() == 6);
    CHECK(s.ledger->reserved("apples") == 4);
    // The first saga takes while the second holds its reservation: nobody waits.
    s.take(first, 1, 3, true);
    CHECK(s.store.status(first) == saga_status::completed);
    CHECK(s.units() == 3);
    CHECK(s.ledger->reserved("apples") == 4); // the first's is final: only the second's is held
    auto held = s.ledger->open();
    REQUIRE(held.size() == 1);
    CHECK(held[0].saga == second);
    CHECK(held[0].step == "seller/take");
    CHECK(held[0].amount == 4);

    s.roll_back(second);
    CHECK(s.store.status(second) == saga_status::rolled_back);
    CHECK(s.units() == 7); // the second's 4 back, the first's 3 sold
    CHECK(s.ledger->reserved("apples") == 0);
    CHECK(s.ledger->open().empty());
}

TEST_CASE("reservations: misuse is refused with a usage_error, and a total never wraps") {
    shop s;
    std::vector<std::string> refused;
    s.inside_take = [&](choreo::saga::step_context& ctx) {
        auto refuse = [&](auto&& call) {
            try {
                call();
            } catch (const choreo::usage_error& e) {
                refused.emplace_back(e.what());
            }
        };
        refuse([&] { s.ledger->reserve(ctx, "pears", 0); });
        refuse([&] { s.ledger->reserve(ctx, "pears", -5); });
        refuse([&] { (void)s.ledger->release(ctx); }); // a step, not a compensation
        s.ledger->reserve(ctx, "big", std::numeric_limits<std::int64_t>::max());
        refuse([&] { s.ledger->reserve(ctx, "big", 1); });
    };
    auto key = s.start(1, 2, false);
    s.take(key, 1, 2, false);
    REQUIRE(refused.size() == 4);
    CHECK(refused[0].find("reserve at least 1") != std::string::npos);
    CHECK(refused[2].find("release() is for compensations") != std::string::npos);
    CHECK(refused[3].find("would pass") != std::string::npos);
    CHECK(s.ledger->reserved("big") == std::numeric_limits<std::int64_t>::max());
    CHECK(s.ledger->reserved("pears") == 0);
}

TEST_CASE("reservations: after a restart, those of sagas that completed meanwhile are settled") {
    shop s;
    auto key = s.start(1, 5, false);
    s.take(key, 1, 5, false);
    s.ledger.reset(); // the process stops listening before the saga ends
    s.finish(key, 1);
    CHECK(s.store.status(key) == saga_status::completed);

    s.ledger.emplace(s.sagas, s.db); // restarted on the same database
    CHECK(s.ledger->reserved("apples") == 5);
    CHECK(s.ledger->settle_ended() == 1);
    CHECK(s.ledger->reserved("apples") == 0);
    CHECK(s.units() == 5); // final: taken once, never given back
    CHECK(s.ledger->settle_ended() == 0);
}

TEST_CASE("reservations: a completed saga whose end this process never heard is settled by the sweep") {
    shop s;
    s.ledger.emplace(s.sagas, s.db, 20ms); // sweeps every 20 ms
    auto key = s.start(1, 2, false);
    s.take(key, 1, 2, false);
    // The saga completes in the store, and its saga_ended never reaches this process (the
    // broadcast died with the process that completed it).
    REQUIRE(s.store.complete(key).changed);
    CHECK(s.ledger->reserved("apples") == 2);
    for (auto deadline = std::chrono::steady_clock::now() + 10s;
         s.ledger->reserved("apples") != 0 && std::chrono::steady_clock::now() < deadline;)
        std::this_thread::sleep_for(5ms);
    CHECK(s.ledger->reserved("apples") == 0);
    CHECK(s.units() == 8); // final: taken once
}
