#pragma once
/// @file
/// @brief The SQLite step journal: a saga participant's record of its committed steps, in
/// the participant's own database (see choreo/saga/journal.hpp).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <choreo/core/errors.hpp>
#include <choreo/durable/codec.hpp>
#include <choreo/durable/json_codec.hpp>
#include <choreo/saga/detail/journal_columns.hpp>
#include <choreo/saga/journal.hpp>
#include <choreo/sqlite/database.hpp>
#include <choreo/sqlite/detail/schema.hpp>

namespace choreo::sqlite {

/// @brief choreo::saga::step_journal on a SQLite database (table choreo_saga_journal),
/// with events encoded by `Codec`.
///
/// Give it the database the participant's steps run on: record(), mark_compensated() and
/// abandon() write inside the transaction the participant has open there (a
/// choreo::usage_error outside one), so they commit with the step or not at all. One row per
/// (saga, step): the second record of a step fails, which is what makes a duplicate or
/// late delivery roll back. Thread-safe through the database's lock.
template <class Codec = durable::json_codec>
class saga_journal {
public:
    /// @brief The schema version of choreo_saga_journal this code writes.
    static constexpr std::int64_t schema_version = 1;

    /// @brief Creates the table if needed; a sqlite_error if the database holds a newer schema.
    explicit saga_journal(database& db, Codec codec = {}) : db_(db), codec_(std::move(codec)) {
        detail::ensure_schema(db_, "saga_journal", schema_version, R"sql(
            CREATE TABLE IF NOT EXISTS choreo_saga_journal (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                saga TEXT NOT NULL,
                step TEXT NOT NULL,
                state TEXT NOT NULL,
                completes INTEGER NOT NULL,
                payload TEXT NOT NULL,
                markers TEXT NOT NULL,
                recorded_at INTEGER NOT NULL,
                UNIQUE (saga, step));
        )sql");
    }

    /// @brief The database it writes through.
    [[nodiscard]] database& resource() const noexcept { return db_; }

    /// @brief An event as the journal keeps it.
    template <class E>
    [[nodiscard]] std::string encode(const E& event) const {
        return codec_.encode(event);
    }
    /// @brief An event the journal kept.
    template <class E>
    [[nodiscard]] E decode(std::string_view payload) const {
        return codec_.template decode<E>(payload);
    }

    /// @brief Records a committed step; false if the step has a row already.
    bool record(std::string_view key, std::string_view step, std::string_view payload, bool completes,
                const std::vector<std::string>& markers) {
        return insert(key, step, "done", payload, completes, saga::detail::join_markers(markers), "record");
    }

    /// @brief Marks a done step compensated; false if it is not done.
    bool mark_compensated(std::string_view key, std::string_view step) {
        return db_.read([&] {
            require_transaction("mark_compensated");
            statement update{db_, "UPDATE choreo_saga_journal SET state = 'compensated' "
                                  "WHERE saga = ? AND step = ? AND state = 'done'"};
            update.bind(key, step).run();
            return db_.changes() == 1;
        });
    }

    /// @brief Records that a step never committed (so that it never does); false if it did.
    bool abandon(std::string_view key, std::string_view step) {
        return insert(key, step, "abandoned", "", false, "", "abandon");
    }

    /// @brief The step's row, if any.
    [[nodiscard]] std::optional<saga::journal_entry> find(std::string_view key, std::string_view step) {
        return db_.read([&]() -> std::optional<saga::journal_entry> {
            statement q{db_, "SELECT saga, step, state, completes, payload, markers, seq FROM choreo_saga_journal "
                             "WHERE saga = ? AND step = ?"};
            q.bind(key, step);
            if (!q.step()) return std::nullopt;
            return entry_of(q);
        });
    }

    /// @brief The saga's rows, oldest first.
    [[nodiscard]] std::vector<saga::journal_entry> entries(std::string_view key) {
        return db_.read([&] {
            statement q{db_, "SELECT saga, step, state, completes, payload, markers, seq FROM choreo_saga_journal "
                             "WHERE saga = ? ORDER BY seq"};
            q.bind(key);
            std::vector<saga::journal_entry> out;
            while (q.step()) out.push_back(entry_of(q));
            return out;
        });
    }

    /// @brief The sagas with rows of committed steps, oldest first.
    [[nodiscard]] std::vector<std::string> sagas() {
        return db_.read([&] {
            statement q{
                db_, "SELECT saga FROM choreo_saga_journal WHERE state <> 'abandoned' GROUP BY saga ORDER BY MIN(seq)"};
            std::vector<std::string> out;
            while (q.step()) out.push_back(q.text(0));
            return out;
        });
    }

    /// @brief Deletes the saga's rows, in a transaction of its own, except abandonments:
    /// those stay, so that a delivery of the step still running somewhere can never commit.
    void forget(std::string_view key) {
        db_.transact([&] {
            statement{db_, "DELETE FROM choreo_saga_journal WHERE saga = ? AND state <> 'abandoned'"}.bind(key).run();
        });
    }

    /// @brief How many rows it holds (sagas not heard to end).
    [[nodiscard]] std::int64_t size() {
        return db_.read([&] {
            statement q{db_, "SELECT COUNT(*) FROM choreo_saga_journal"};
            return q.step() ? q.integer(0) : 0;
        });
    }

private:
    bool insert(std::string_view key, std::string_view step, std::string_view state, std::string_view payload,
                bool completes, const std::string& markers, const char* what) {
        return db_.read([&] {
            require_transaction(what);
            statement q{db_,
                        "INSERT OR IGNORE INTO choreo_saga_journal "
                        "(saga, step, state, completes, payload, markers, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)"};
            q.bind(key, step, state, completes ? 1 : 0, payload, markers, now_ms()).run();
            return db_.changes() == 1;
        });
    }

    void require_transaction(const char* what) const {
        if (sqlite3_get_autocommit(db_.handle()))
            throw usage_error(std::string{"saga_journal::"} + what +
                              "() must run inside the participant's transaction on " + db_.path() +
                              ", or it would not commit with the step");
    }

    static saga::journal_entry entry_of(statement& q) {
        saga::journal_entry e;
        e.key = q.text(0);
        e.step = q.text(1);
        e.state = saga::detail::journal_state_of(q.text(2));
        e.completes = q.integer(3) != 0;
        e.payload = q.text(4);
        e.markers = saga::detail::split_markers(q.text(5));
        e.sequence = static_cast<std::uint64_t>(q.integer(6));
        return e;
    }

    static std::int64_t now_ms() noexcept {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }

    database& db_;
    Codec codec_;
};

static_assert(saga::step_journal<saga_journal<>>);

} // namespace choreo::sqlite
