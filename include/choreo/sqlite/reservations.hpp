#pragma once
/// @file
/// @brief Reservations (escrow) for the counters saga steps take from: a stock, a balance.
///
/// A step takes `n` of a counter it checked, in its own transaction, and records the
/// reservation in the same transaction; other sagas go on against what is left, with no
/// marker held and nobody waiting. The step's compensation gives back what release()
/// returns; the saga's completion makes the reservation final (its rows go). Use it for
/// quantities whose updates commute (adding and taking back in any order ends the same);
/// keep the semantic lock (step_context::hold) for aggregates whose state a saga must see
/// unchanged until it ends (docs/sagas.md, "Countermeasures").

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <choreo/core/bus.hpp>
#include <choreo/core/errors.hpp>
#include <choreo/saga/events.hpp>
#include <choreo/saga/participant.hpp>
#include <choreo/saga/runtime.hpp>
#include <choreo/sqlite/database.hpp>
#include <choreo/sqlite/detail/schema.hpp>

namespace choreo::sqlite {

/// @brief What one step of one saga holds of one account.
struct reservation {
    std::string saga;        ///< the saga's key
    std::string step;        ///< the step that reserved it, "participant/step"
    std::string account;     ///< what it was taken from, in the caller's words ("product:7")
    std::int64_t amount = 0; ///< how much: more than zero
};

/// @brief The reservations of the steps of one participant's database (table
/// choreo_reservations), settled when their sagas complete.
///
/// reserve() and release() run inside the step's or the compensation's transaction on this
/// database, so a reservation is recorded with the change to the counter or not at all.
/// When a saga of `sagas` completes, its reservations are deleted (final) in a transaction
/// of their own, on the bus's threads. An end this process does not hear (its broadcast died
/// with the process that ended the saga, or this one was down) is caught by a sweep: every
/// `sweep`, the sagas holding reservations older than that are looked up in the store, and
/// those that completed are settled. Thread-safe. `sagas` and `db` must outlive it.
class reservations {
public:
    /// @brief Creates the table if needed, listens for the ends of `sagas`' sagas and sweeps
    /// every `sweep` (zero: never; then call settle_ended()).
    reservations(saga::runtime& sagas, database& db, std::chrono::milliseconds sweep = std::chrono::seconds{5})
        : state_(std::make_shared<state>(sagas, db, sweep)) {
        detail::ensure_schema(db, "reservations", 1, R"sql(
            CREATE TABLE IF NOT EXISTS choreo_reservations (
                saga TEXT NOT NULL,
                step TEXT NOT NULL,
                account TEXT NOT NULL,
                amount INTEGER NOT NULL CHECK (amount > 0),
                reserved_at INTEGER NOT NULL,
                PRIMARY KEY (saga, step, account));
            CREATE INDEX IF NOT EXISTS choreo_reservations_by_account ON choreo_reservations (account);
        )sql");
        listener_options options{.name = "reservations: settle a completed saga's", .when = phase::after_commit};
        options.without_transaction = no_transaction_policy::run_now;
        options.retry = {.immediate_retries = 2, .delayed_retries = 8, .initial_delay = std::chrono::milliseconds{50}};
        if (!sagas.options().deliver) {
            options.mode = delivery::asynchronous; // not on the thread of whoever ended the saga
            options.executor = sagas.options().executor;
        }
        ended_ = sagas.events().subscribe<saga::saga_ended>(
            [s = state_](const saga::saga_ended& e) {
                if (e.outcome == saga::saga_status::completed) s->settle(e.key);
            },
            std::move(options));
        state_->arm();
    }
    /// @brief Stops listening; waits for a settlement running now.
    ~reservations() {
        ended_.disconnect();
        std::lock_guard lock{state_->mutex};
        state_->closed = true;
    }
    reservations(const reservations&) = delete;
    reservations& operator=(const reservations&) = delete;

    /// @brief In a step, inside its transaction: records that its saga holds `amount` of
    /// `account`, which the step has just taken from its counter after checking it was there.
    /// Reserving the same account again in the same step adds to it. A choreo::usage_error in
    /// a compensation, outside a transaction on this database, for an amount below one, or
    /// for a total past the largest std::int64_t.
    void reserve(const saga::step_context& step, std::string_view account, std::int64_t amount) {
        if (step.compensating())
            throw usage_error("reserve() is for steps; a compensation gives back what release() returns");
        if (amount < 1)
            throw usage_error(fmt::format("a reservation of {} on '{}': reserve at least 1", amount, account));
        auto& db = in_transaction("reserve()");
        statement held{db, "SELECT amount FROM choreo_reservations WHERE saga = ? AND step = ? AND account = ?"};
        held.bind(step.saga().view(), step.step(), account);
        std::int64_t total = amount;
        if (held.step()) {
            auto before = held.integer(0);
            if (before > std::numeric_limits<std::int64_t>::max() - amount)
                throw usage_error(fmt::format("reserving {} more of '{}' for saga {} would pass {} in all", amount,
                                              account, step.saga().view(), std::numeric_limits<std::int64_t>::max()));
            total = before + amount;
        }
        statement{db, "INSERT INTO choreo_reservations (saga, step, account, amount, reserved_at) "
                      "VALUES (?, ?, ?, ?, ?) ON CONFLICT (saga, step, account) DO UPDATE SET amount = excluded.amount"}
            .bind(step.saga().view(), step.step(), account, total, state_->now_ms())
            .run();
    }

    /// @brief In the compensation of a step, inside its transaction: removes and returns what
    /// that step reserved, for the compensation to give back to its counters in the same
    /// transaction. Empty if it reserved nothing, or gave it back already. A
    /// choreo::usage_error in a step, or outside a transaction on this database.
    [[nodiscard]] std::vector<reservation> release(const saga::step_context& compensation) {
        if (!compensation.compensating())
            throw usage_error("release() is for compensations: a step's reservation is released by undoing it");
        auto& db = in_transaction("release()");
        std::vector<reservation> released;
        statement held{db, "SELECT account, amount FROM choreo_reservations WHERE saga = ? AND step = ? "
                           "ORDER BY account"};
        held.bind(compensation.saga().view(), compensation.step());
        while (held.step())
            released.push_back({std::string{compensation.saga().view()}, std::string{compensation.step()}, held.text(0),
                                held.integer(1)});
        statement{db, "DELETE FROM choreo_reservations WHERE saga = ? AND step = ?"}
            .bind(compensation.saga().view(), compensation.step())
            .run();
        return released;
    }

    /// @brief How much of `account` sagas that have not completed hold (a sqlite_error if
    /// the sum passes the largest std::int64_t).
    [[nodiscard]] std::int64_t reserved(std::string_view account) {
        auto& db = state_->db;
        return db.read([&] {
            statement sum{db, "SELECT COALESCE(SUM(amount), 0) FROM choreo_reservations WHERE account = ?"};
            sum.bind(account);
            return sum.step() ? sum.integer(0) : 0;
        });
    }

    /// @brief Every reservation held now, by saga, step and account.
    [[nodiscard]] std::vector<reservation> open() {
        auto& db = state_->db;
        return db.read([&] {
            std::vector<reservation> all;
            statement rows{db, "SELECT saga, step, account, amount FROM choreo_reservations "
                               "ORDER BY saga, step, account"};
            while (rows.step()) all.push_back({rows.text(0), rows.text(1), rows.text(2), rows.integer(3)});
            return all;
        });
    }

    /// @brief Settles the reservations of sagas that completed while nobody here listened
    /// (the process was down): asks the saga store about each saga holding some, however
    /// recent. Returns how many sagas it settled. Run it once after a restart; the sweep
    /// does the same for reservations older than its period.
    std::size_t settle_ended() { return state_->settle_completed(std::numeric_limits<std::int64_t>::max()); }

private:
    // What the end listener shares with this object: it may run after the object is gone,
    // and then does nothing (closed); a settlement holds the mutex while it runs.
    struct state : std::enable_shared_from_this<state> {
        state(saga::runtime& s, database& d, std::chrono::milliseconds every) : sagas(s), db(d), sweep(every) {}
        [[nodiscard]] std::int64_t now_ms() const {
            return std::chrono::duration_cast<std::chrono::milliseconds>(sagas.clock().now().time_since_epoch())
                .count();
        }
        // The next sweep, on the runtime's scheduler (a timer: no thread waits for it).
        void arm() {
            if (sweep.count() <= 0) return;
            sagas.clock().after(
                sweep,
                [weak = weak_from_this()] {
                    auto self = weak.lock();
                    if (!self) return;
                    try {
                        (void)self->settle_completed(self->now_ms() - self->sweep.count());
                    } catch (...) {
                        // The store or the database away: the next sweep tries again.
                    }
                    std::lock_guard lock{self->mutex};
                    if (!self->closed) self->arm();
                },
                saga::task_kind::watchdog);
        }
        // Settles the completed sagas among those holding reservations made at or before
        // `cutoff` (ms); returns how many. Holds the mutex throughout, so the object's
        // destructor waits for it and nothing runs on the database afterwards.
        std::size_t settle_completed(std::int64_t cutoff) {
            std::lock_guard lock{mutex};
            if (closed) return 0;
            std::vector<std::string> keys = db.read([&] {
                std::vector<std::string> found;
                statement q{db, "SELECT DISTINCT saga FROM choreo_reservations WHERE reserved_at <= ? ORDER BY saga"};
                q.bind(cutoff);
                while (q.step()) found.push_back(q.text(0));
                return found;
            });
            std::size_t settled = 0;
            for (auto& key : keys) {
                auto record = sagas.state(key);
                if (!record || record->status != saga::saga_status::completed) continue;
                delete_rows(key);
                ++settled;
            }
            return settled;
        }
        // The saga completed: its reservations are final. False once closed.
        bool settle(std::string_view key) {
            std::lock_guard lock{mutex};
            if (closed) return false;
            delete_rows(key);
            return true;
        }
        void delete_rows(std::string_view key) {
            db.transact([&] { statement{db, "DELETE FROM choreo_reservations WHERE saga = ?"}.bind(key).run(); });
        }
        saga::runtime& sagas;
        database& db;
        std::chrono::milliseconds sweep;
        std::mutex mutex;
        bool closed = false;
    };

    // The database, when this thread has a transaction open on it (under its lock, so that
    // another thread's transaction is not taken for this one's).
    database& in_transaction(std::string_view what) {
        auto& db = state_->db;
        if (db.read([&] { return sqlite3_get_autocommit(db.handle()) != 0; }))
            throw usage_error(fmt::format("{} runs inside the step's transaction on {}", what, db.path()));
        return db;
    }

    std::shared_ptr<state> state_;
    choreo::connection ended_;
};

} // namespace choreo::sqlite
