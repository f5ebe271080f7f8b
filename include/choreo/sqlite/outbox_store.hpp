#pragma once
/// @file
/// @brief The SQLite outbox: rows written in the business transaction, claimed atomically by relays.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <choreo/durable/detail/outbox_columns.hpp>
#include <choreo/durable/store.hpp>
#include <choreo/sqlite/database.hpp>
#include <choreo/sqlite/detail/schema.hpp>

namespace choreo::sqlite {

/// @brief choreo::durable::outbox_store on a SQLite database (table choreo_outbox).
///
/// The table is created on first use. Claims are one UPDATE ... RETURNING in an immediate
/// transaction, so relays on several connections or processes never claim one row twice.
/// Thread-safe through the database's lock.
class outbox_store {
public:
    /// @brief The schema version of choreo_outbox this code writes.
    static constexpr std::int64_t schema_version = 1;

    /// @brief Creates the table if needed; a sqlite_error if the database holds a newer schema.
    explicit outbox_store(database& db) : db_(db) {
        detail::ensure_schema(db_, "outbox", schema_version, R"sql(
            CREATE TABLE IF NOT EXISTS choreo_outbox (
                id INTEGER PRIMARY KEY,
                event_type TEXT NOT NULL,
                listener TEXT NOT NULL,
                event_id TEXT NOT NULL,
                causation_id TEXT NOT NULL,
                correlation_key TEXT NOT NULL,
                event_time INTEGER NOT NULL,
                payload TEXT NOT NULL,
                state INTEGER NOT NULL DEFAULT 0,
                attempts INTEGER NOT NULL DEFAULT 0,
                due_at INTEGER NOT NULL DEFAULT 0,
                claimed_by TEXT,
                claimed_until INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                settled_at INTEGER);
            CREATE INDEX IF NOT EXISTS choreo_outbox_pending ON choreo_outbox (id) WHERE state = 0;
            CREATE INDEX IF NOT EXISTS choreo_outbox_settled ON choreo_outbox (settled_at) WHERE state = 1;
        )sql");
    }

    /// @brief The database the rows are written through.
    [[nodiscard]] database& resource() const noexcept { return db_; }

    /// @brief Appends a row; call inside a transaction on resource() (the outbox does).
    void append(const durable::outbox_message& message) { insert(message, {}, 0); }

    /// @brief Appends a row claimed by `relay` until `until` and returns its id; call inside a
    /// transaction on resource() (the outbox does, for the rows its own relay will take).
    std::int64_t append_claimed(const durable::outbox_message& message, std::string_view relay,
                                std::chrono::system_clock::time_point until) {
        insert(message, relay, durable::detail::milliseconds_of(until));
        return db_.last_insert_id();
    }

    /// @brief Claims up to `limit` due rows for `relay` until now + lease, oldest first.
    [[nodiscard]] std::vector<durable::outbox_row> claim(std::string_view relay, std::size_t limit,
                                                         std::chrono::system_clock::time_point now,
                                                         std::chrono::milliseconds lease) {
        return db_.transact([&] {
            static const std::string sql =
                std::string{"UPDATE choreo_outbox SET claimed_by = ?1, claimed_until = ?2 WHERE id IN "
                            "(SELECT id FROM choreo_outbox WHERE state = 0 AND due_at <= ?3 AND "
                            "claimed_until <= ?3 ORDER BY id LIMIT ?4) RETURNING "} +
                std::string{row_columns};
            statement claim{db_, sql};
            claim.bind(relay, durable::detail::milliseconds_of(now + lease), durable::detail::milliseconds_of(now),
                       static_cast<std::int64_t>(limit));
            auto rows = read_rows(claim);
            std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
            return rows;
        });
    }

    /// @brief Records what became of claimed rows, all in one transaction.
    void settle(std::span<const durable::settlement> settled) {
        if (settled.empty()) return;
        auto now = durable::detail::milliseconds_of(std::chrono::system_clock::now());
        using outcome = durable::settlement::outcome;
        // Delivered rows, the common case, are marked by one statement per round count
        // (usually one): their ids go in as a JSON array.
        std::map<unsigned, std::string> delivered;
        for (const auto& s : settled) {
            if (s.result != outcome::delivered) continue;
            auto& ids = delivered[s.attempts];
            ids += ids.empty() ? '[' : ',';
            ids += std::to_string(s.id);
        }
        db_.transact([&] {
            for (auto& [attempts, ids] : delivered) {
                ids += ']';
                statement done{db_,
                               "UPDATE choreo_outbox SET state = 1, attempts = ?, settled_at = ?, claimed_by = NULL, "
                               "claimed_until = 0, last_error = NULL WHERE id IN (SELECT value FROM json_each(?))"};
                done.bind(static_cast<std::int64_t>(attempts), now, ids).run();
            }
            for (const auto& s : settled) {
                const auto attempts = static_cast<std::int64_t>(s.attempts);
                switch (s.result) {
                case outcome::delivered: break;
                case outcome::retry: {
                    statement later{db_, "UPDATE choreo_outbox SET attempts = ?, due_at = ?, last_error = ?, "
                                         "claimed_by = NULL, claimed_until = 0 WHERE id = ?"};
                    later.bind(attempts, durable::detail::milliseconds_of(s.retry_at), s.error, s.id).run();
                    break;
                }
                case outcome::failed: {
                    statement failed{db_, "UPDATE choreo_outbox SET state = 2, attempts = ?, last_error = ?, "
                                          "settled_at = ?, claimed_by = NULL, claimed_until = 0 WHERE id = ?"};
                    failed.bind(attempts, s.error, now, s.id).run();
                    break;
                }
                }
            }
        });
    }

    /// @brief Rows still claimed by `relay` become claimable again (it restarted).
    std::size_t release(std::string_view relay) {
        return db_.transact([&] {
            statement release{db_, "UPDATE choreo_outbox SET claimed_by = NULL, claimed_until = 0 "
                                   "WHERE claimed_by = ? AND state = 0"};
            release.bind(relay).run();
            return static_cast<std::size_t>(db_.changes());
        });
    }

    /// @brief Rows per state.
    [[nodiscard]] durable::outbox_counts counts() {
        return db_.read([&] {
            durable::outbox_counts counts;
            statement count{db_, "SELECT state, count(*) FROM choreo_outbox GROUP BY state"};
            while (count.step()) {
                auto n = static_cast<std::uint64_t>(count.integer(1));
                switch (count.integer(0)) {
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
                "SELECT " + std::string{row_columns} + " FROM choreo_outbox WHERE state = 2 ORDER BY id LIMIT ?";
            statement list{db_, sql};
            list.bind(static_cast<std::int64_t>(limit));
            return read_rows(list);
        });
    }

    /// @brief Makes failed row `id` pending again with a fresh retry budget; false if it is not failed.
    bool resubmit(std::int64_t id) {
        return db_.transact([&] {
            statement again{db_, "UPDATE choreo_outbox SET state = 0, attempts = 0, due_at = 0, last_error = NULL, "
                                 "settled_at = NULL WHERE id = ? AND state = 2"};
            again.bind(id).run();
            return db_.changes() == 1;
        });
    }

    /// @brief Makes every failed row pending again; returns how many.
    std::size_t resubmit_failed() {
        return db_.transact([&] {
            db_.execute("UPDATE choreo_outbox SET state = 0, attempts = 0, due_at = 0, last_error = NULL, "
                        "settled_at = NULL WHERE state = 2");
            return static_cast<std::size_t>(db_.changes());
        });
    }

    /// @brief Deletes rows delivered before `before`; returns how many.
    std::size_t purge_delivered(std::chrono::system_clock::time_point before) {
        return db_.transact([&] {
            statement purge{db_, "DELETE FROM choreo_outbox WHERE state = 1 AND settled_at < ?"};
            purge.bind(durable::detail::milliseconds_of(before)).run();
            return static_cast<std::size_t>(db_.changes());
        });
    }

private:
    void insert(const durable::outbox_message& message, std::string_view relay, std::int64_t claimed_until) {
        const auto& env = message.event_envelope;
        char event[32], causation[32];
        write_hex(event, env.id);
        write_hex(causation, env.causation_id);
        statement insert{db_, "INSERT INTO choreo_outbox (event_type, listener, event_id, causation_id, "
                              "correlation_key, event_time, payload, claimed_by, claimed_until) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"};
        const std::string_view event_id{event, 32}, causation_id{causation, 32};
        const auto time = durable::detail::nanoseconds_of(env.time);
        if (relay.empty())
            insert.bind(message.event_type, message.listener, event_id, causation_id, env.key.view(), time,
                        message.payload, std::nullopt, std::int64_t{0});
        else
            insert.bind(message.event_type, message.listener, event_id, causation_id, env.key.view(), time,
                        message.payload, relay, claimed_until);
        insert.run();
    }

    static constexpr std::string_view row_columns =
        "id, event_type, listener, event_id, causation_id, correlation_key, event_time, payload, attempts, state, "
        "coalesce(last_error, '')";

    static std::vector<durable::outbox_row> read_rows(statement& query) {
        std::vector<durable::outbox_row> rows;
        while (query.step())
            rows.push_back(durable::detail::row_of({query.integer(0), query.text(1), query.text(2), query.text(3),
                                                    query.text(4), query.text(5), query.integer(6), query.text(7),
                                                    query.integer(8), query.integer(9), query.text(10)}));
        return rows;
    }

    static void write_hex(char* out, const event_id& id) noexcept {
        constexpr char digits[] = "0123456789abcdef";
        for (int i = 0; i < 16; ++i) out[i] = digits[(id.high >> (60 - 4 * i)) & 0xf];
        for (int i = 0; i < 16; ++i) out[16 + i] = digits[(id.low >> (60 - 4 * i)) & 0xf];
    }
    database& db_;
};

} // namespace choreo::sqlite
