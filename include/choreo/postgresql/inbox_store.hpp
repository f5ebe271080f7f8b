#pragma once
/// @file
/// @brief The PostgreSQL inbox: the events a consumer has processed, recorded in its own
/// transaction.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <choreo/core/envelope.hpp>
#include <choreo/core/errors.hpp>
#include <choreo/postgresql/database.hpp>
#include <choreo/postgresql/detail/schema.hpp>

namespace choreo::postgresql {

/// @brief choreo::durable::inbox_store on a PostgreSQL database (table choreo_inbox).
///
/// A consumer calls record() inside the transaction that makes its effect: the record
/// commits with the effect or not at all, so a redelivered event is recognised and skipped.
/// A second record of the same event is not an error (which would abort the transaction on
/// PostgreSQL): it inserts nothing and returns false. Thread-safe through the database's lock.
class inbox_store {
public:
    /// @brief The schema version of choreo_inbox this code writes.
    static constexpr std::int64_t schema_version = 1;

    /// @brief Creates the table if needed; a postgresql_error if the database holds a newer schema.
    explicit inbox_store(database& db) : db_(db) {
        detail::ensure_schema(db_, "inbox", schema_version, R"sql(
            CREATE TABLE IF NOT EXISTS choreo_inbox (
                consumer TEXT NOT NULL,
                event_id TEXT NOT NULL,
                received_at BIGINT NOT NULL,
                PRIMARY KEY (consumer, event_id));
            CREATE INDEX IF NOT EXISTS choreo_inbox_received ON choreo_inbox (received_at);
        )sql");
    }

    /// @brief The database it writes through.
    [[nodiscard]] database& resource() const noexcept { return db_; }

    /// @brief Records that `consumer` processed event `id`: true the first time, false when
    /// it was already recorded (skip the effect). A choreo::usage_error outside a transaction
    /// on resource(), where the record could not commit together with the effect.
    bool record(std::string_view consumer, const event_id& id) {
        return db_.read([&] {
            if (!db_.in_transaction())
                throw usage_error("inbox_store::record() must run inside the consumer's transaction (begin a unit "
                                  "of work on its database first), or the record would not commit with the effect");
            return db_.query("INSERT INTO choreo_inbox (consumer, event_id, received_at) VALUES ($1, $2, $3) "
                             "ON CONFLICT DO NOTHING",
                             {consumer, id.to_string(), now_ms()})
                       .affected() == 1;
        });
    }

    /// @brief True when `consumer` has recorded event `id`.
    [[nodiscard]] bool seen(std::string_view consumer, const event_id& id) {
        return db_.read([&] {
            return db_.query("SELECT 1 FROM choreo_inbox WHERE consumer = $1 AND event_id = $2",
                             {consumer, id.to_string()})
                       .rows() == 1;
        });
    }

    /// @brief Forgets records older than `before` (keep them longer than any redelivery can take).
    std::size_t purge(std::chrono::system_clock::time_point before) {
        return db_.transact([&] {
            auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(before.time_since_epoch()).count();
            return static_cast<std::size_t>(
                db_.query("DELETE FROM choreo_inbox WHERE received_at < $1", {std::int64_t{millis}}).affected());
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

} // namespace choreo::postgresql
