#pragma once
/// @file
/// @brief How a listener is subscribed: phase, order, name, delivery, ordering, policy, retries.

#include <chrono>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

#include <choreo/core/errors.hpp>
#include <choreo/core/phase.hpp>

namespace choreo {

/// @brief Retries for after_* and asynchronous listeners: first immediate retries, then
/// delayed retries with exponential backoff on a steady_timer (asynchronous listeners only).
struct retry_policy {
    unsigned immediate_retries = 0;               ///< extra attempts at once, on the same thread
    unsigned delayed_retries = 0;                 ///< extra attempts after a delay (asynchronous listeners)
    std::chrono::milliseconds initial_delay{100}; ///< the first delayed retry's wait
    double backoff_multiplier = 2.0;              ///< each further wait is this times the last
    std::chrono::milliseconds max_delay{std::chrono::seconds{30}}; ///< the longest wait
    /// @brief Whether an error may succeed if retried; by default anything but choreo::permanent_error.
    std::function<bool(const std::exception_ptr&)> is_retryable{};

    /// @brief The delay before delayed retry number `n` (0-based), never above max_delay.
    [[nodiscard]] std::chrono::milliseconds delay_before(unsigned n) const noexcept {
        double delay = static_cast<double>(initial_delay.count());
        const double cap = static_cast<double>(max_delay.count());
        for (unsigned i = 0; i < n && delay < cap; ++i) delay *= backoff_multiplier;
        // Compared as doubles, returned from the integer: a cap near the largest count
        // rounds up as a double, and converting that back would overflow.
        if (!(delay < cap)) return max_delay;
        return std::chrono::milliseconds{static_cast<std::chrono::milliseconds::rep>(delay)};
    }

    /// @brief Why this policy cannot be used (a delay below zero, a multiplier below one
    /// or not a number), or empty when it can.
    [[nodiscard]] std::string_view invalid_reason() const noexcept {
        if (initial_delay.count() < 0 || max_delay.count() < 0) return "retry delays must not be negative";
        if (!(backoff_multiplier >= 1.0 && backoff_multiplier <= 1e9))
            return "retry backoff_multiplier must be a number from 1 to 1e9";
        return "";
    }

    /// @brief Applies is_retryable, or the default rule when it is empty.
    [[nodiscard]] bool retryable(const std::exception_ptr& error) const {
        if (is_retryable) return is_retryable(error);
        try {
            std::rethrow_exception(error);
        } catch (const permanent_error&) {
            return false;
        } catch (...) {
            return true;
        }
    }
};

/// @brief Everything about a subscription except the callable. Use designated initialisers:
/// `{.name = "send to data platform", .when = phase::after_commit, .mode = delivery::asynchronous}`.
struct listener_options {
    std::string name{};                    ///< shown in errors, traces and diagrams; generated when empty
    phase when = phase::immediate;         ///< the phase it runs in
    int order = 0;                         ///< lower runs first within the phase; ties keep registration order
    delivery mode = delivery::synchronous; ///< where it runs
    ordering order_by = ordering::none;    ///< asynchronous only: keep order per correlation key
    std::optional<boost::asio::any_io_executor> executor{}; ///< asynchronous only: defaults to the bus's thread pool
    no_transaction_policy without_transaction = no_transaction_policy::error; ///< transactional phases only
    retry_policy retry{}; ///< after_* and asynchronous listeners only
};

} // namespace choreo
