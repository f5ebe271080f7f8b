#pragma once
/// @file
/// @brief What the saga layer reports: the barrier's refusals, waits, failures and timeouts,
/// and traces of the steps and compensations it runs.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string_view>
#include <thread>

#include <fmt/format.h>

namespace choreo::saga {

/// @brief Kinds of saga incidents.
enum class saga_incident_kind : std::uint8_t {
    step_failed,              ///< a step threw: its saga is rolled back
    duplicate_step,           ///< a step's event was delivered again: skipped
    step_too_late,            ///< a step's event came after its saga ended or began rolling back: skipped
    unknown_saga,             ///< an event names a saga the store does not know: skipped
    missing_saga_key,         ///< a step's event carries no correlation key: skipped
    aggregate_busy,           ///< another saga holds an aggregate's marker: the step waits and retries
    contention_exhausted,     ///< the marker was still held after the last retry: the saga is rolled back
    timed_out,                ///< the saga passed its deadline: rolled back
    compensation_failed,      ///< a compensation threw and will be retried
    compensation_exhausted,   ///< a compensation failed for the last time: the saga stays rolling_back
    compensation_unavailable, ///< a step is done but this process no longer has the event to compensate it with
    duplicate_compensation,   ///< a rollback was delivered again: skipped
};

/// @brief Name of a saga incident kind.
[[nodiscard]] constexpr std::string_view to_string(saga_incident_kind kind) noexcept {
    switch (kind) {
    case saga_incident_kind::step_failed: return "step_failed";
    case saga_incident_kind::duplicate_step: return "duplicate_step";
    case saga_incident_kind::step_too_late: return "step_too_late";
    case saga_incident_kind::unknown_saga: return "unknown_saga";
    case saga_incident_kind::missing_saga_key: return "missing_saga_key";
    case saga_incident_kind::aggregate_busy: return "aggregate_busy";
    case saga_incident_kind::contention_exhausted: return "contention_exhausted";
    case saga_incident_kind::timed_out: return "timed_out";
    case saga_incident_kind::compensation_failed: return "compensation_failed";
    case saga_incident_kind::compensation_exhausted: return "compensation_exhausted";
    case saga_incident_kind::compensation_unavailable: return "compensation_unavailable";
    case saga_incident_kind::duplicate_compensation: return "duplicate_compensation";
    }
    return "unknown";
}

/// @brief One report. The views are valid only during the call.
struct saga_incident {
    saga_incident_kind kind;  ///< what happened
    std::string_view saga;    ///< the saga key
    std::string_view step;    ///< the step concerned, if any
    std::string_view message; ///< a readable explanation
};

/// @brief Receives saga incidents, from any thread.
using saga_incident_handler = std::function<void(const saga_incident&)>;

/// @brief The default handler: one line on stderr.
inline void print_saga_incident(const saga_incident& i) {
    fmt::print(stderr, "choreo saga: {}: {} [{}]: {}\n", to_string(i.kind), i.saga, i.step, i.message);
}

/// @brief What a saga_trace is about.
enum class saga_work : std::uint8_t {
    start,        ///< the step that started the saga (traced once its unit of work ended)
    step,         ///< a step run for an event
    join,         ///< a fan-in, run once its branches are done
    compensation, ///< what undoes a start, a step or a join
};

/// @brief Name of a saga_work.
[[nodiscard]] constexpr std::string_view to_string(saga_work work) noexcept {
    switch (work) {
    case saga_work::start: return "start";
    case saga_work::step: return "step";
    case saga_work::join: return "join";
    case saga_work::compensation: return "compensation";
    }
    return "unknown";
}

/// @brief One step or compensation that ran, as the saga tracer sees it. The bus's tracer
/// sees the listeners that carry events to a participant; this one sees each step and each
/// compensation it runs, with its saga, however many one delivery runs (a rollback event
/// undoes every step a participant did for the saga). The views are valid only during the call.
struct saga_trace {
    std::string_view saga;             ///< the saga key
    std::string_view step;             ///< "participant/step"
    saga_work work;                    ///< a start, a step, a join, or a compensation
    bool succeeded;                    ///< its local transaction committed
    std::string_view error;            ///< why it failed (the exception's message); empty when it succeeded
    std::chrono::nanoseconds duration; ///< from its start to its commit or failure
    std::thread::id thread;            ///< where it ran
};

/// @brief Receives saga traces, from any thread.
using saga_tracer = std::function<void(const saga_trace&)>;

} // namespace choreo::saga
