#pragma once
/// @file
/// @brief How an outbox, its relay and its durable listeners are set up.

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include <choreo/core/listener_options.hpp>

namespace choreo::durable {

/// @brief How a durable listener is subscribed.
struct durable_options {
    /// Required and stable: rows name their listener, so a renamed listener no longer
    /// receives rows written under the old name (they fail with that reason).
    std::string name{};
    /// Per row: 1 + immediate_retries attempts make a round; a failed round is retried
    /// delayed_retries times, after retry.delay_before(n), then the row fails.
    retry_policy retry{.immediate_retries = 0, .delayed_retries = 5, .initial_delay = std::chrono::milliseconds{100}};
};

/// @brief How an asynchronous durable listener reports what became of an event it was handed:
/// null once it was delivered, else the reason it was not (retried, or failed for a
/// choreo::permanent_error, as a listener's exception is). Call it once, from any thread;
/// later calls are ignored.
using delivery_report = std::function<void(std::exception_ptr)>;

/// @brief Settings of an outbox and its relay.
struct outbox_options {
    /// Unique among the relays of one database. A relay that restarts under the same name
    /// takes back the rows its previous run had claimed (a crash leaves them claimed).
    std::string relay_name = "relay";
    /// false: only write rows; another process (or start() later) relays them.
    bool relay = true;
    std::size_t batch_size = 256; ///< rows claimed per pass
    /// A claim expires after this (longer than a batch takes); a row handed to an
    /// asynchronous listener whose report has not come by then is retried.
    std::chrono::milliseconds lease{30'000};
    std::chrono::milliseconds poll_interval{500};      ///< passes also run this often (retries, rows of other writers)
    std::chrono::milliseconds keep_delivered{600'000}; ///< delivered rows are purged after this
    std::optional<boost::asio::any_io_executor> executor{}; ///< where the relay runs; the bus's pool by default
};

} // namespace choreo::durable
