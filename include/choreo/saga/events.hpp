#pragma once
/// @file
/// @brief The events the saga layer publishes itself; every participant hears them.

#include <string>
#include <string_view>
#include <vector>

#include <choreo/saga/status.hpp>

namespace choreo::saga {

/// @brief A saga was marked rolled back: every participant compensates the steps it ran.
struct saga_rolled_back {
    std::string key;         ///< the saga
    std::string reason;      ///< why
    std::string failed_step; ///< which step failed; empty for a timeout
    /// The steps the saga had claimed or run when it was rolled back (no step is claimed
    /// after that), so a participant that owns none of them has nothing to compensate and
    /// need not read the saga's record. Empty: not known, every participant reads it.
    std::vector<std::string> steps{};
    static constexpr std::string_view choreo_event_name = "choreo.saga_rolled_back"; ///< stable type name
};

/// @brief A saga ended (completed, or rolled back with every compensation done):
/// participants release the in-progress markers they hold for it.
struct saga_ended {
    std::string key;                                                           ///< the saga
    saga_status outcome = saga_status::completed;                              ///< completed or rolled_back
    static constexpr std::string_view choreo_event_name = "choreo.saga_ended"; ///< stable type name
};

/// @brief Published into the unit of work that starts a saga, so the starting step is
/// recorded as done when that unit commits, and the saga rolled back if it does not.
struct saga_started {
    std::string key;  ///< the saga
    std::string step; ///< the starting step, "participant/step"
    static constexpr std::string_view choreo_event_name = "choreo.saga_started"; ///< stable type name
};

} // namespace choreo::saga
