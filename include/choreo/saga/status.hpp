#pragma once
/// @file
/// @brief What a rollback-state store records about a saga, and what its operations answer.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace choreo::saga {

/// @brief The wall clock that deadlines and marker expiries are measured on (shared by processes).
using time_point = std::chrono::system_clock::time_point;

/// @brief Where a saga stands.
enum class saga_status : std::uint8_t {
    running,      ///< started; steps may run
    completed,    ///< a step declared it complete; nothing more runs
    rolling_back, ///< a step failed or it timed out; compensations are under way
    rolled_back,  ///< every step that ran has been compensated
};

/// @brief Where one step of a saga stands.
enum class step_state : std::uint8_t {
    claimed,      ///< running now (or waiting for an aggregate held by another saga)
    done,         ///< its local transaction committed
    failed,       ///< its local transaction rolled back: nothing to compensate
    compensating, ///< its compensation is running (or being retried)
    compensated,  ///< its compensation committed
};

/// @brief Name of a saga status.
[[nodiscard]] constexpr std::string_view to_string(saga_status value) noexcept {
    switch (value) {
    case saga_status::running: return "running";
    case saga_status::completed: return "completed";
    case saga_status::rolling_back: return "rolling_back";
    case saga_status::rolled_back: return "rolled_back";
    }
    return "unknown";
}

/// @brief Name of a step state.
[[nodiscard]] constexpr std::string_view to_string(step_state value) noexcept {
    switch (value) {
    case step_state::claimed: return "claimed";
    case step_state::done: return "done";
    case step_state::failed: return "failed";
    case step_state::compensating: return "compensating";
    case step_state::compensated: return "compensated";
    }
    return "unknown";
}

/// @brief True once a saga can change no more (completed or rolled back).
[[nodiscard]] constexpr bool has_ended(saga_status value) noexcept {
    return value == saga_status::completed || value == saga_status::rolled_back;
}

/// @brief One step as the store records it.
struct step_record {
    std::string name;                       ///< "participant/step"
    step_state state = step_state::claimed; ///< where the step is
    /// @brief Records are equal when name and state are.
    friend bool operator==(const step_record&, const step_record&) = default;
};

/// @brief A saga as the store records it: for display, tests and recovery.
struct saga_record {
    std::string key;                           ///< the saga's key
    saga_status status = saga_status::running; ///< running, completed, rolling_back or rolled_back
    std::string reason;                        ///< why it rolled back; empty otherwise
    std::string failed_step;                   ///< the step that failed (or empty for a timeout)
    time_point started{};                      ///< when the saga was created
    time_point deadline{};                     ///< past this while running, it is rolled back; max() for none
    std::vector<step_record> steps;            ///< in the order they were first claimed
    std::vector<std::string> joined;           ///< "join/branch" arrivals of fan-ins

    /// @brief The state of a step, or nothing if it never started.
    [[nodiscard]] std::optional<step_state> state_of(std::string_view step) const {
        for (const auto& s : steps)
            if (s.name == step) return s.state;
        return std::nullopt;
    }
    /// @brief The names of its steps, in the order they were first claimed.
    [[nodiscard]] std::vector<std::string> step_names() const {
        std::vector<std::string> names;
        names.reserve(steps.size());
        for (const auto& s : steps) names.push_back(s.name);
        return names;
    }
    /// @brief How many steps are in the given state.
    [[nodiscard]] std::size_t count(step_state state) const noexcept {
        std::size_t n = 0;
        for (const auto& s : steps) n += s.state == state ? 1 : 0;
        return n;
    }
};

/// @brief The answer to claiming a step.
enum class claim_outcome : std::uint8_t {
    claimed,     ///< run it
    duplicate,   ///< it was claimed before: a duplicated delivery
    not_running, ///< the saga has completed or is rolling back: a step that came too late
    unknown,     ///< no saga with that key (never started, or forgotten)
};

/// @brief The answer to asking whether a step that ran must be compensated.
enum class compensation_outcome : std::uint8_t {
    run,              ///< it is done and nobody compensated it: compensate it now
    duplicate,        ///< compensated already, or being compensated
    never_ran,        ///< it failed or never started: nothing to undo
    pending,          ///< it is still running; whoever finishes it will see the rollback
    not_rolling_back, ///< the saga is running or completed: there is nothing to compensate
    unknown,          ///< no saga with that key
};

/// @brief What an operation did to the saga as a whole.
struct transition {
    bool found = false;     ///< a saga with that key exists
    bool changed = false;   ///< this call changed the saga's status (first rollback, completion, expiry)
    bool ended_now = false; ///< this call made it end (completed, or the last compensation)
    saga_status status = saga_status::running; ///< the status after the call
    /// When this call rolled the saga back (`changed`, status not completed): every step the
    /// saga had claimed or run by then, so only their owners need the saga's record. Empty
    /// when the store does not say.
    std::vector<std::string> steps{};
};

/// @brief The answer to a fan-in arrival.
struct join_outcome {
    bool found = false;      ///< a saga with that key exists
    bool added = false;      ///< this branch had not arrived before
    std::size_t arrived = 0; ///< distinct branches arrived so far
};

/// @brief The answer to finishing a step with what follows it in one operation
/// (choreo::saga::step_finishing_store).
struct step_finish {
    transition finished;                 ///< the step's finish
    std::vector<join_outcome> arrivals;  ///< one per fan-in named, in order; empty unless the saga still runs
    std::optional<transition> completed; ///< the completion, when asked for and the saga still ran
};

/// @brief The answer to marking an aggregate in progress.
struct marker_outcome {
    bool acquired = false; ///< the caller's saga holds it now
    std::string holder;    ///< otherwise: the saga that holds it
    bool queued = false;   ///< otherwise: the caller waits in the marker's queue
    std::size_t ahead = 0; ///< otherwise: how many sagas wait before the caller
};

/// @brief The answer to releasing an in-progress marker.
struct marker_release {
    bool released = false; ///< the caller's saga held it, and no longer does
    std::string next;      ///< the waiting saga it was handed to (first in the queue), if any
};

} // namespace choreo::saga
