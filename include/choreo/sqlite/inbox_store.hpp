#pragma once
/// @file
/// @brief The SQLite inbox: the events a consumer has processed, recorded in its own transaction.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <choreo/core/envelope.hpp>
#include <choreo/core/errors.hpp>
#include <choreo/sqlite/database.hpp>
#include <choreo/sqlite/detail/schema.hpp>

namespace choreo::sqlite {

/// @brief choreo::durable::inbox_store on a SQLite database (table choreo_inbox).
///
/// A consumer calls record() inside the transaction that makes its effect: the record
/// commits with the effect or not at all, so a redelivered event is recognised and
/// skipped. Thread-safe through the database's lock.
class inbox_store {
public:
    /// @brief The schema version of choreo_inbox this code writes.
    static constexpr std::int64_t schema_version = 1;

    /// @brief Creates the table if needed; a sqlite_error if the database holds a newer schema.
    explicit inbox_store(database& db) : db_(db) {
        detail::ensure_schema(db_, "inbox", schema_version, R"sql(
            CREATE TABLE IF NOT EXISTS choreo_inbox (
                consumer TEXT NOT NULL,
                event_id TEXT NOT NULL,
                received_at INTEGER NOT NULL,
                PRIMARY KEY (consumer, event_id)) WITHOUT ROWID;
        )sql");
    }

    /// @brief The database it writes through.
    [[nodiscard]] database& resource() const noexcept { return db_; }

    /// @brief Records that `consumer` processed event `id`: true the first time, false when
    /// it was already recorded (skip the effect). A choreo::usage_error outside a transaction
    /// on resource(), where the record could not commit together with the effect.
    bool record(std::string_view consumer, const event_id& id) {
        return db_.read([&] {
            if (sqlite3_get_autocommit(db_.handle()))
                throw usage_error(
                    "inbox_store::record() must run inside the consumer's transaction on " + db_.path() +
                    " (begin a unit of work on it first), or the record would not commit with the effect");
            statement insert{db_,
                             "INSERT OR IGNORE INTO choreo_inbox (consumer, event_id, received_at) VALUES (?, ?, ?)"};
            insert.bind(consumer, id.to_string(), now_ms()).run();
            return db_.changes() == 1;
        });
    }

    /// @brief True when `consumer` has recorded event `id`.
    [[nodiscard]] bool seen(std::string_view consumer, const event_id& id) {
        return db_.read([&] {
            statement find{db_, "SELECT 1 FROM choreo_inbox WHERE consumer = ? AND event_id = ?"};
            find.bind(consumer, id.to_string());
            return find.step();
        });
    }

    /// @brief Forgets records older than `before` (keep them longer than any redelivery can take).
    std::size_t purge(std::chrono::system_clock::time_point before) {
        return db_.transact([&] {
            statement purge{db_, "DELETE FROM choreo_inbox WHERE received_at < ?"};
            purge.bind(std::chrono::duration_cast<std::chrono::milliseconds>(before.time_since_epoch()).count()).run();
            return static_cast<std::size_t>(db_.changes());
        });
    }

private:
    static std::int64_t now_ms() noexcept {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }

    database& db_;
};

} // namespace choreo::sqlite
