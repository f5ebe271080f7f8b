#pragma once
/// @file
/// @brief The PostgreSQL step journal: a saga participant's record of its committed steps,
/// in the participant's own database (see choreo/saga/journal.hpp).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <choreo/core/errors.hpp>
#include <choreo/durable/codec.hpp>
#include <choreo/durable/json_codec.hpp>
#include <choreo/postgresql/database.hpp>
#include <choreo/postgresql/detail/schema.hpp>
#include <choreo/saga/detail/journal_columns.hpp>
#include <choreo/saga/journal.hpp>

namespace choreo::postgresql {

/// @brief choreo::saga::step_journal on a PostgreSQL database (table choreo_saga_journal),
/// with events encoded by `Codec`.
///
/// Give it the database the participant's steps run on: record(), mark_compensated() and
/// abandon() write inside the transaction the participant has open there (a
/// choreo::usage_error outside one), so they commit with the step or not at all. One row per
/// (saga, step): a second record of a step inserts nothing and returns false (ON CONFLICT DO
/// NOTHING, so the transaction is not aborted), which is what makes a duplicate or late
/// delivery roll back. Thread-safe through the database's lock.
template <class Codec = durable::json_codec>
class saga_journal {
public:
    /// @brief The schema version of choreo_saga_journal this code writes.
    static constexpr std::int64_t schema_version = 1;

    /// @brief Creates the table if needed; a postgresql_error if the database holds a newer schema.
    explicit saga_journal(database& db, Codec codec = {}) : db_(db), codec_(std::move(codec)) {
        detail::ensure_schema(db_, "saga_journal", schema_version, R"sql(
            CREATE TABLE IF NOT EXISTS choreo_saga_journal (
                seq BIGSERIAL PRIMARY KEY,
                saga TEXT NOT NULL,
                step TEXT NOT NULL,
                state TEXT NOT NULL,
                completes BOOLEAN NOT NULL,
                payload TEXT NOT NULL,
                markers TEXT NOT NULL,
                recorded_at BIGINT NOT NULL,
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
            return db_.query("UPDATE choreo_saga_journal SET state = 'compensated' "
                             "WHERE saga = $1 AND step = $2 AND state = 'done'",
                             {key, step})
                       .affected() == 1;
        });
    }

    /// @brief Records that a step never committed (so that it never does); false if it did.
    bool abandon(std::string_view key, std::string_view step) {
        return insert(key, step, "abandoned", "", false, "", "abandon");
    }

    /// @brief The step's row, if any.
    [[nodiscard]] std::optional<saga::journal_entry> find(std::string_view key, std::string_view step) {
        return db_.read([&]() -> std::optional<saga::journal_entry> {
            auto rows = db_.query("SELECT saga, step, state, completes, payload, markers, seq FROM "
                                  "choreo_saga_journal WHERE saga = $1 AND step = $2",
                                  {key, step});
            if (rows.rows() == 0) return std::nullopt;
            return entry_of(rows, 0);
        });
    }

    /// @brief The saga's rows, oldest first.
    [[nodiscard]] std::vector<saga::journal_entry> entries(std::string_view key) {
        return db_.read([&] {
            auto rows = db_.query("SELECT saga, step, state, completes, payload, markers, seq FROM "
                                  "choreo_saga_journal WHERE saga = $1 ORDER BY seq",
                                  {key});
            std::vector<saga::journal_entry> out;
            for (int i = 0; i < rows.rows(); ++i) out.push_back(entry_of(rows, i));
            return out;
        });
    }

    /// @brief The sagas with rows of committed steps, oldest first.
    [[nodiscard]] std::vector<std::string> sagas() {
        return db_.read([&] {
            auto rows = db_.query("SELECT saga FROM choreo_saga_journal WHERE state <> 'abandoned' GROUP BY saga "
                                  "ORDER BY MIN(seq)");
            std::vector<std::string> out;
            for (int i = 0; i < rows.rows(); ++i) out.push_back(rows.text(i, 0));
            return out;
        });
    }

    /// @brief Deletes the saga's rows, in a transaction of its own, except abandonments:
    /// those stay, so that a delivery of the step still running somewhere can never commit.
    void forget(std::string_view key) {
        db_.transact([&] {
            (void)db_.query("DELETE FROM choreo_saga_journal WHERE saga = $1 AND state <> 'abandoned'", {key});
        });
    }

    /// @brief How many rows it holds (sagas not heard to end).
    [[nodiscard]] std::int64_t size() {
        return db_.read([&] { return db_.query("SELECT count(*) FROM choreo_saga_journal").integer(0, 0); });
    }

private:
    bool insert(std::string_view key, std::string_view step, std::string_view state, std::string_view payload,
                bool completes, const std::string& markers, const char* what) {
        return db_.read([&] {
            require_transaction(what);
            return db_.query("INSERT INTO choreo_saga_journal (saga, step, state, completes, payload, markers, "
                             "recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (saga, step) DO NOTHING",
                             {key, step, state, completes ? "true" : "false", payload, markers, now_ms()})
                       .affected() == 1;
        });
    }

    void require_transaction(const char* what) const {
        if (!db_.in_transaction())
            throw usage_error(std::string{"saga_journal::"} + what +
                              "() must run inside the participant's transaction on its database, or it would not "
                              "commit with the step");
    }

    static saga::journal_entry entry_of(const result& rows, int i) {
        saga::journal_entry e;
        e.key = rows.text(i, 0);
        e.step = rows.text(i, 1);
        e.state = saga::detail::journal_state_of(rows.text(i, 2));
        e.completes = rows.text(i, 3) == "t";
        e.payload = rows.text(i, 4);
        e.markers = saga::detail::split_markers(rows.text(i, 5));
        e.sequence = static_cast<std::uint64_t>(rows.integer(i, 6));
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

} // namespace choreo::postgresql
