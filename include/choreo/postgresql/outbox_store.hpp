#pragma once
/// @file
/// @brief The PostgreSQL outbox: rows written in the business transaction, claimed
/// atomically by relays.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <choreo/durable/detail/outbox_columns.hpp>
#include <choreo/durable/store.hpp>
#include <choreo/postgresql/database.hpp>
#include <choreo/postgresql/detail/schema.hpp>

namespace choreo::postgresql {

/// @brief choreo::durable::outbox_store on a PostgreSQL database (table choreo_outbox).
///
/// The table is created on first use, with a trigger that notifies channel
/// "choreo_outbox:<schema>" at commit when rows arrive that no relay claimed at append
/// (postgresql::outbox_wakeup listens there). A claim is one UPDATE over the oldest due rows taken
/// with FOR UPDATE SKIP LOCKED, so relays on several connections or processes never claim
/// one row twice and never wait for each other's claims. Payloads are stored as text: a
/// codec's output must be valid UTF-8 without NUL bytes (the JSON codec's is); anything else
/// fails the transaction that appends it. Thread-safe through the database's lock.
class outbox_store {
public:
    /// @brief The schema version of choreo_outbox this code writes.
    static constexpr std::int64_t schema_version = 1;

    /// @brief Creates the table if needed; a postgresql_error if the database holds a newer schema.
    explicit outbox_store(database& db) : db_(db) {
        detail::ensure_schema(db_, "outbox", schema_version, R"sql(
            CREATE TABLE IF NOT EXISTS choreo_outbox (
                id BIGSERIAL PRIMARY KEY,
                event_type TEXT NOT NULL,
                listener TEXT NOT NULL,
                event_id TEXT NOT NULL,
                causation_id TEXT NOT NULL,
                correlation_key TEXT NOT NULL,
                event_time BIGINT NOT NULL,
                payload TEXT NOT NULL,
                state SMALLINT NOT NULL DEFAULT 0,
                attempts INTEGER NOT NULL DEFAULT 0,
                due_at BIGINT NOT NULL DEFAULT 0,
                claimed_by TEXT,
                claimed_until BIGINT NOT NULL DEFAULT 0,
                last_error TEXT,
                settled_at BIGINT);
            CREATE INDEX IF NOT EXISTS choreo_outbox_pending ON choreo_outbox (id) WHERE state = 0;
            CREATE INDEX IF NOT EXISTS choreo_outbox_settled ON choreo_outbox (settled_at) WHERE state = 1;
            CREATE OR REPLACE FUNCTION choreo_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('choreo_outbox:' || TG_TABLE_SCHEMA, '');
                RETURN NULL;
            END $$;
            CREATE OR REPLACE TRIGGER choreo_outbox_unclaimed AFTER INSERT ON choreo_outbox
                FOR EACH ROW WHEN (NEW.claimed_by IS NULL) EXECUTE FUNCTION choreo_outbox_notify();
        )sql");
    }

    /// @brief The database the rows are written through.
    [[nodiscard]] database& resource() const noexcept { return db_; }

    /// @brief Appends a row; call inside a transaction on resource() (the outbox does).
    void append(const durable::outbox_message& message) { (void)insert(message, {}, 0); }

    /// @brief Appends a row claimed by `relay` until `until` and returns its id; call inside a
    /// transaction on resource() (the outbox does, for the rows its own relay will take).
    std::int64_t append_claimed(const durable::outbox_message& message, std::string_view relay,
                                std::chrono::system_clock::time_point until) {
        return insert(message, relay, durable::detail::milliseconds_of(until));
    }

    /// @brief Claims up to `limit` due rows for `relay` until now + lease, oldest first.
    [[nodiscard]] std::vector<durable::outbox_row> claim(std::string_view relay_name, std::size_t limit,
                                                         std::chrono::system_clock::time_point now,
                                                         std::chrono::milliseconds lease) {
        auto& relay = relay_connection();
        return relay.transact([&] {
            static const std::string sql =
                "UPDATE choreo_outbox SET claimed_by = $1, claimed_until = $2 WHERE id IN "
                "(SELECT id FROM choreo_outbox WHERE state = 0 AND due_at <= $3 AND claimed_until <= $3 "
                "ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING " +
                std::string{row_columns};
            auto rows =
                read_rows(relay.query(sql, {relay_name, durable::detail::milliseconds_of(now + lease),
                                            durable::detail::milliseconds_of(now), static_cast<std::int64_t>(limit)}));
            std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
            return rows;
        });
    }

    /// @brief Records what became of claimed rows, all in one transaction.
    void settle(std::span<const durable::settlement> settled) {
        if (settled.empty()) return;
        const auto now = durable::detail::milliseconds_of(std::chrono::system_clock::now());
        using outcome = durable::settlement::outcome;
        // Delivered rows, the common case, are marked by one statement per round count
        // (usually one): their ids go in as an array.
        std::map<unsigned, std::string> delivered;
        for (const auto& s : settled) {
            if (s.result != outcome::delivered) continue;
            auto& ids = delivered[s.attempts];
            ids += ids.empty() ? '{' : ',';
            ids += std::to_string(s.id);
        }
        auto& relay = relay_connection();
        auto statements = [&] {
            for (auto& [attempts, ids] : delivered)
                (void)relay.query("UPDATE choreo_outbox SET state = 1, attempts = $1, settled_at = $2, claimed_by = "
                                  "NULL, claimed_until = 0, last_error = NULL WHERE id = ANY($3::bigint[])",
                                  {static_cast<std::int64_t>(attempts), now, ids + '}'});
            for (const auto& s : settled) {
                const auto attempts = static_cast<std::int64_t>(s.attempts);
                if (s.result == outcome::retry)
                    (void)relay.query("UPDATE choreo_outbox SET attempts = $1, due_at = $2, last_error = $3, "
                                      "claimed_by = NULL, claimed_until = 0 WHERE id = $4",
                                      {attempts, durable::detail::milliseconds_of(s.retry_at), s.error, s.id});
                else if (s.result == outcome::failed)
                    (void)relay.query("UPDATE choreo_outbox SET state = 2, attempts = $1, last_error = $2, "
                                      "settled_at = $3, claimed_by = NULL, claimed_until = 0 WHERE id = $4",
                                      {attempts, s.error, now, s.id});
            }
        };
        // One statement is a transaction of its own: no BEGIN and COMMIT round trips for it.
        if (delivered.size() == 1 &&
            std::all_of(settled.begin(), settled.end(), [](const auto& s) { return s.result == outcome::delivered; }))
            relay.read(statements);
        else
            relay.transact(statements);
    }

    /// @brief Rows still claimed by `relay` become claimable again (it restarted).
    std::size_t release(std::string_view relay_name) {
        auto& relay = relay_connection();
        return static_cast<std::size_t>(relay
                                            .query("UPDATE choreo_outbox SET claimed_by = NULL, claimed_until = 0 "
                                                   "WHERE claimed_by = $1 AND state = 0",
                                                   {relay_name})
                                            .affected());
    }

    /// @brief Rows per state.
    [[nodiscard]] durable::outbox_counts counts() {
        return db_.read([&] {
            durable::outbox_counts counts;
            auto rows = db_.query("SELECT state, count(*) FROM choreo_outbox GROUP BY state");
            for (int i = 0; i < rows.rows(); ++i) {
                auto n = static_cast<std::uint64_t>(rows.integer(i, 1));
                switch (rows.integer(i, 0)) {
                case 0: counts.pending = n; break;
                case 1: counts.delivered = n; break;
                default: counts.failed += n; break;
                }
            }
            return counts;
        });
    }

    /// @brief Up to `limit` failed rows, oldest first, with their last error.
    [[nodiscard]] std::vector<durable::outbox_row> failed(std::size_t limit) {
        return db_.read([&] {
            static const std::string sql =
                "SELECT " + std::string{row_columns} + " FROM choreo_outbox WHERE state = 2 ORDER BY id LIMIT $1";
            return read_rows(db_.query(sql, {static_cast<std::int64_t>(limit)}));
        });
    }

    /// @brief Makes failed row `id` pending again with a fresh retry budget; false if it is not failed.
    bool resubmit(std::int64_t id) {
        return db_.transact([&] {
            return db_.query("UPDATE choreo_outbox SET state = 0, attempts = 0, due_at = 0, last_error = NULL, "
                             "settled_at = NULL WHERE id = $1 AND state = 2",
                             {id})
                       .affected() == 1;
        });
    }

    /// @brief Makes every failed row pending again; returns how many.
    std::size_t resubmit_failed() {
        return db_.transact([&] {
            return static_cast<std::size_t>(
                db_.query("UPDATE choreo_outbox SET state = 0, attempts = 0, due_at = 0, last_error = NULL, "
                          "settled_at = NULL WHERE state = 2")
                    .affected());
        });
    }

    /// @brief Deletes rows delivered before `before`; returns how many.
    std::size_t purge_delivered(std::chrono::system_clock::time_point before) {
        return db_.transact([&] {
            return static_cast<std::size_t>(db_.query("DELETE FROM choreo_outbox WHERE state = 1 AND settled_at < $1",
                                                      {durable::detail::milliseconds_of(before)})
                                                .affected());
        });
    }

private:
    // The relay's claims and settlements run on a connection of their own, opened at the
    // first: they do not queue behind the business transactions on the writers' connection.
    // Their commits do not wait for the WAL to reach the disk (synchronous_commit off): one
    // lost in a crash of the server only means rows delivered again, which at-least-once
    // delivery allows (inboxes recognise them), while waiting would double the relay's
    // fsyncs per event.
    database& relay_connection() {
        std::lock_guard lock{relay_mutex_};
        if (!relay_) {
            auto session = db_.session();
            session.emplace_back("SET synchronous_commit = off");
            relay_ = std::make_unique<database>(db_.conninfo(), std::move(session));
        }
        return *relay_;
    }

    std::int64_t insert(const durable::outbox_message& message, std::string_view relay, std::int64_t claimed_until) {
        const auto& env = message.event_envelope;
        static const std::string sql = "INSERT INTO choreo_outbox (event_type, listener, event_id, causation_id, "
                                       "correlation_key, event_time, payload, claimed_by, claimed_until) "
                                       "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";
        auto inserted =
            db_.query(sql, {message.event_type, message.listener, env.id.to_string(), env.causation_id.to_string(),
                            env.key.view(), durable::detail::nanoseconds_of(env.time), message.payload,
                            relay.empty() ? parameter{std::nullopt} : parameter{relay}, claimed_until});
        return inserted.integer(0, 0);
    }

    static constexpr std::string_view row_columns =
        "id, event_type, listener, event_id, causation_id, correlation_key, event_time, payload, attempts, state, "
        "coalesce(last_error, '')";

    static std::vector<durable::outbox_row> read_rows(const result& rows) {
        std::vector<durable::outbox_row> out;
        out.reserve(static_cast<std::size_t>(rows.rows()));
        for (int i = 0; i < rows.rows(); ++i)
            out.push_back(
                durable::detail::row_of({rows.integer(i, 0), rows.text(i, 1), rows.text(i, 2), rows.text(i, 3),
                                         rows.text(i, 4), rows.text(i, 5), rows.integer(i, 6), rows.text(i, 7),
                                         rows.integer(i, 8), rows.integer(i, 9), rows.text(i, 10)}));
        return out;
    }

    database& db_;
    std::mutex relay_mutex_;
    std::unique_ptr<database> relay_;
};

} // namespace choreo::postgresql
