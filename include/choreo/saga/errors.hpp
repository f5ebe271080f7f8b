#pragma once
/// @file
/// @brief What participant::start() throws when a saga cannot start.

#include <chrono>
#include <string>

#include <choreo/core/errors.hpp>

namespace choreo::saga {

/// @brief A saga with the key given to participant::start() exists already.
class saga_exists_error : public choreo::error {
public:
    using choreo::error::error;
};

/// @brief A saga was not started because its runtime runs as many as it may
/// (runtime_options::max_running): nothing was created or published. Try again after
/// retry_after(), when the oldest running saga should have ended.
class saga_overloaded_error : public choreo::error {
public:
    /// @brief The refusal's words for people, and when to try again.
    saga_overloaded_error(const std::string& message, std::chrono::milliseconds retry_after)
        : choreo::error(message), retry_after_(retry_after) {}
    /// @brief How long to wait before trying again.
    [[nodiscard]] std::chrono::milliseconds retry_after() const noexcept { return retry_after_; }

private:
    std::chrono::milliseconds retry_after_;
};

} // namespace choreo::saga
