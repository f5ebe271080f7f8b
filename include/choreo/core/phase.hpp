#pragma once
/// @file
/// @brief The vocabulary of a subscription: phase, delivery, ordering and the
/// policy for events published with no unit of work.

#include <cstdint>
#include <string_view>

namespace choreo {

/// @brief When a listener runs relative to the unit of work its event was published in.
enum class phase : std::uint8_t {
    immediate,        ///< at publish, on the publishing thread
    before_commit,    ///< inside commit(), before the resource commits
    after_commit,     ///< after the resource committed
    after_rollback,   ///< after the resource rolled back
    after_completion, ///< after either, with the outcome
};

/// @brief Number of phases; phases index arrays.
inline constexpr std::size_t phase_count = 5;

/// @brief Where a listener runs: on the thread that reaches its phase, or on an executor.
enum class delivery : std::uint8_t {
    synchronous,  ///< on the publishing or committing thread
    asynchronous, ///< as part of one job per commit on an Asio executor
};

/// @brief Whether asynchronous deliveries of one key keep their order.
enum class ordering : std::uint8_t {
    none,    ///< jobs may run in parallel
    per_key, ///< events with the same correlation key run one after another, in order
};

/// @brief What a transactional listener does with an event published outside any unit of work.
enum class no_transaction_policy : std::uint8_t {
    error,             ///< publish() throws choreo::no_transaction_error before any listener runs
    run_now,           ///< run as if the event were committed in a unit of work of its own
    skip_with_warning, ///< do not run; the bus reports an incident of kind listener_skipped
};

/// @brief How a unit of work ended, as seen by after_completion listeners.
enum class completion : std::uint8_t {
    none,        ///< not completed (phases other than after_*)
    committed,   ///< the resource committed
    rolled_back, ///< the resource rolled back
};

/// @brief Name of a phase as written in docs, errors and diagrams.
[[nodiscard]] constexpr std::string_view to_string(phase value) noexcept {
    switch (value) {
    case phase::immediate: return "immediate";
    case phase::before_commit: return "before_commit";
    case phase::after_commit: return "after_commit";
    case phase::after_rollback: return "after_rollback";
    case phase::after_completion: return "after_completion";
    }
    return "unknown";
}

/// @brief Name of a delivery mode.
[[nodiscard]] constexpr std::string_view to_string(delivery value) noexcept {
    return value == delivery::synchronous ? "sync" : "async";
}

/// @brief Name of an ordering.
[[nodiscard]] constexpr std::string_view to_string(ordering value) noexcept {
    return value == ordering::none ? "unordered" : "per_key";
}

/// @brief Name of a no-transaction policy.
[[nodiscard]] constexpr std::string_view to_string(no_transaction_policy value) noexcept {
    switch (value) {
    case no_transaction_policy::error: return "error";
    case no_transaction_policy::run_now: return "run_now";
    case no_transaction_policy::skip_with_warning: return "skip_with_warning";
    }
    return "unknown";
}

/// @brief Name of a completion.
[[nodiscard]] constexpr std::string_view to_string(completion value) noexcept {
    switch (value) {
    case completion::none: return "none";
    case completion::committed: return "committed";
    case completion::rolled_back: return "rolled_back";
    }
    return "unknown";
}

/// @brief True for the phases that need a unit of work.
[[nodiscard]] constexpr bool is_transactional(phase value) noexcept { return value != phase::immediate; }

} // namespace choreo
