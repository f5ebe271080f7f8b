#pragma once
/// @file
/// @brief What the bus reports: incidents (to the error handler) and dispatch traces (to the tracer).

#include <chrono>
#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

#include <choreo/core/envelope.hpp>
#include <choreo/core/phase.hpp>

namespace choreo {

/// @brief What went wrong, or was skipped, outside the caller's view.
enum class incident_kind : std::uint8_t {
    listener_failed,   ///< an after_* or async listener threw and will be retried
    retries_exhausted, ///< an after_* or async listener failed for the last time (or with a permanent error)
    listener_skipped,  ///< a listener with skip_with_warning saw an event with no unit of work
    rollback_failed,   ///< the resource's rollback() threw
};

/// @brief Name of an incident kind.
[[nodiscard]] constexpr std::string_view to_string(incident_kind kind) noexcept {
    switch (kind) {
    case incident_kind::listener_failed: return "listener_failed";
    case incident_kind::retries_exhausted: return "retries_exhausted";
    case incident_kind::listener_skipped: return "listener_skipped";
    case incident_kind::rollback_failed: return "rollback_failed";
    }
    return "unknown";
}

/// @brief One report to the error handler. References are valid only during the call.
struct incident {
    incident_kind kind;             ///< what happened
    std::string_view event_type;    ///< empty for rollback_failed
    std::string_view listener;      ///< the listener's name; empty for rollback_failed
    phase listener_phase;           ///< the phase the listener is bound to
    const envelope* event_envelope; ///< null when there is no event (rollback_failed)
    std::exception_ptr error;       ///< null for listener_skipped
    unsigned attempt;               ///< 1 for the first try
    std::string_view message;       ///< a readable explanation
};

/// @brief The error handler; it may be called from any thread of the bus concurrently.
using incident_handler = std::function<void(const incident&)>;

/// @brief The outcome of one listener invocation.
enum class dispatch_outcome : std::uint8_t {
    succeeded,
    failed,
    skipped, ///< policy skip_with_warning, or the connection was gone
};

/// @brief Name of a dispatch outcome.
[[nodiscard]] constexpr std::string_view to_string(dispatch_outcome value) noexcept {
    switch (value) {
    case dispatch_outcome::succeeded: return "ok";
    case dispatch_outcome::failed: return "failed";
    case dispatch_outcome::skipped: return "skipped";
    }
    return "unknown";
}

/// @brief One dispatch as the tracer sees it. References are valid only during the call.
struct dispatch_trace {
    std::string_view event_type;       ///< the event's type name
    std::string_view listener;         ///< the listener's name
    phase listener_phase;              ///< the phase the listener is bound to
    delivery mode;                     ///< synchronous or asynchronous
    completion outcome_of_unit;        ///< for after_* phases
    std::thread::id thread;            ///< the thread the listener ran on
    std::chrono::nanoseconds duration; ///< how long the listener ran
    dispatch_outcome outcome;          ///< delivered, failed or skipped
    unsigned attempt;                  ///< 1 for the first try
    const envelope& event_envelope;    ///< the event's id, key, causation and time
    std::exception_ptr error;          ///< set when outcome is failed
};

/// @brief The tracer; it may be called from any thread of the bus concurrently.
using tracer = std::function<void(const dispatch_trace&)>;

namespace detail {
// Where the dispatch running on this thread (when a tracer or the outbox's relay watches it)
// takes a failure its listener handled itself; null when nothing watches.
inline thread_local std::exception_ptr* handled_failure = nullptr;

// Installs a slot for the listener about to run and restores the outer one after it.
class handled_failure_scope {
public:
    handled_failure_scope() noexcept : saved_(handled_failure) { handled_failure = &error_; }
    ~handled_failure_scope() { handled_failure = saved_; }
    handled_failure_scope(const handled_failure_scope&) = delete;
    handled_failure_scope& operator=(const handled_failure_scope&) = delete;
    [[nodiscard]] const std::exception_ptr& error() const noexcept { return error_; }

private:
    std::exception_ptr error_;
    std::exception_ptr* saved_;
};
} // namespace detail

/// @brief Tells the tracer that the listener running on this thread failed but handled the
/// failure itself (a saga step that threw rolls its saga back instead of throwing on): the
/// dispatch is traced `failed` with `error`. Nothing else changes: no retry, no incident.
/// Outside a traced dispatch it does nothing.
inline void note_handled_failure(std::exception_ptr error) noexcept {
    if (detail::handled_failure) *detail::handled_failure = std::move(error);
}

/// @brief A readable description of an exception_ptr, for messages (handles non-std exceptions).
[[nodiscard]] inline std::string describe(const std::exception_ptr& error) {
    if (!error) return "no error";
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "an exception not derived from std::exception";
    }
}

} // namespace choreo
