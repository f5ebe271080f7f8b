#pragma once
/// @file
/// @brief The outbox and inbox store concepts, and the rows they hold.
///
/// choreo::sqlite::outbox_store and choreo::sqlite::inbox_store implement them; another
/// database plugs in by implementing the same few operations. Every operation but
/// append() and record() runs in a transaction of its own; those two run inside the
/// caller's business transaction, which is the whole point.

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <choreo/core/envelope.hpp>

namespace choreo::durable {

/// @brief Where an outbox row stands.
enum class row_state : std::uint8_t {
    pending = 0,   ///< waiting for delivery (or for its next retry)
    delivered = 1, ///< its listener succeeded
    failed = 2,    ///< retries ran out, or it can never succeed (undecodable, no such listener)
};

/// @brief Name of a row state.
[[nodiscard]] constexpr std::string_view to_string(row_state state) noexcept {
    switch (state) {
    case row_state::pending: return "pending";
    case row_state::delivered: return "delivered";
    case row_state::failed: return "failed";
    }
    return "unknown";
}

/// @brief One row to append: an event for one durable listener. Views are valid during the call.
struct outbox_message {
    std::string_view event_type;    ///< the event's type name
    std::string_view listener;      ///< the durable listener it is for
    const envelope& event_envelope; ///< id, key, causation and time
    std::string_view payload;       ///< the event, encoded by the codec
};

/// @brief A row as claimed or listed.
struct outbox_row {
    std::int64_t id = 0;                          ///< the row's id in the store
    std::string event_type;                       ///< the event's type name
    std::string listener;                         ///< the durable listener it is for
    event_id event;                               ///< the event's id
    event_id causation;                           ///< the id of the event that caused it
    std::string key;                              ///< the correlation key (a saga's key)
    std::chrono::system_clock::time_point time{}; ///< when the event was published
    std::string payload;                          ///< the event, encoded by the codec
    unsigned attempts = 0;                        ///< delivery rounds tried so far
    row_state state = row_state::pending;         ///< pending, delivered or failed
    std::string last_error;                       ///< the last delivery's error, if it failed
    std::string problem;                          ///< set when the stored row cannot be read back (a corrupt row)
};

/// @brief What became of one claimed row.
struct settlement {
    /// @brief Delivered; to retry at retry_at; failed for good.
    enum class outcome : std::uint8_t { delivered, retry, failed };
    std::int64_t id = 0;                              ///< the row
    outcome result = outcome::delivered;              ///< what became of it
    unsigned attempts = 0;                            ///< rounds tried, this one included
    std::chrono::system_clock::time_point retry_at{}; ///< for retry
    std::string error;                                ///< for retry and failed
};

/// @brief Rows per state.
struct outbox_counts {
    std::uint64_t pending = 0;   ///< written, not yet delivered (retries included)
    std::uint64_t delivered = 0; ///< delivered and kept until purged
    std::uint64_t failed = 0;    ///< out of retries, or unreadable: listed by failed()
    /// @brief Counts are equal when every state's count is.
    friend bool operator==(const outbox_counts&, const outbox_counts&) = default;
};

/// @brief An outbox: rows appended in the business transaction, claimed and settled by relays.
template <class S>
concept outbox_store = requires(S& store, const S& const_store, const outbox_message& message, std::string_view relay,
                                std::size_t limit, std::chrono::system_clock::time_point now,
                                std::chrono::milliseconds lease, std::span<const settlement> settled, std::int64_t id) {
    /// the transactional resource append() writes through; units of work on it get outbox rows
    const_store.resource();
    store.append(message);
    /// atomically: up to `limit` pending rows that are due and unclaimed, claimed by `relay` until now + lease, in id
    /// order
    { store.claim(relay, limit, now, lease) } -> std::same_as<std::vector<outbox_row>>;
    store.settle(settled);
    /// rows still claimed by `relay` (an earlier run of it) become claimable again
    { store.release(relay) } -> std::convertible_to<std::size_t>;
    { store.counts() } -> std::same_as<outbox_counts>;
    { store.failed(limit) } -> std::same_as<std::vector<outbox_row>>;
    { store.resubmit(id) } -> std::same_as<bool>;
    { store.resubmit_failed() } -> std::convertible_to<std::size_t>;
    { store.purge_delivered(now) } -> std::convertible_to<std::size_t>;
};

/// @brief An outbox store that can append a row already claimed by a relay, returning its
/// id (inside the caller's transaction, as append()). An outbox on such a store writes the
/// rows of its own commits claimed by its relay and hands them to the relay from memory once
/// the commit is through: no claim transaction per commit; the relay's claims pick up only
/// retries, rows of other writers and rows whose lease ran out (decision 0043).
template <class S>
concept claims_on_append = outbox_store<S> && requires(S& store, const outbox_message& message, std::string_view relay,
                                                       std::chrono::system_clock::time_point until) {
    { store.append_claimed(message, relay, until) } -> std::same_as<std::int64_t>;
};

/// @brief An inbox: which events a consumer has already processed.
template <class S>
concept inbox_store = requires(S& store, std::string_view consumer, const event_id& id,
                               std::chrono::system_clock::time_point before) {
    /// inside the consumer's transaction: true the first time, false for an event already recorded
    { store.record(consumer, id) } -> std::same_as<bool>;
    { store.seen(consumer, id) } -> std::same_as<bool>;
    { store.purge(before) } -> std::convertible_to<std::size_t>;
};

} // namespace choreo::durable
