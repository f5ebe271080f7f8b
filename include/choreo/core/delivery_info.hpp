#pragma once
/// @file
/// @brief What a listener may learn about the delivery it is handling.

#include <choreo/core/detail/frame.hpp>
#include <choreo/core/envelope.hpp>
#include <choreo/core/phase.hpp>

namespace choreo {

/// @brief Take `const delivery_info&` as a listener's second parameter to read the
/// envelope, the phase, the outcome of the unit of work and the attempt number.
class delivery_info {
public:
    /// @brief The envelope of the event being handled (built on first use for immediate dispatch).
    [[nodiscard]] const envelope& event_envelope() const { return frame_->get(); }
    /// @brief The phase this delivery belongs to.
    [[nodiscard]] phase when() const noexcept { return when_; }
    /// @brief committed or rolled_back in after_* phases; none otherwise.
    [[nodiscard]] completion outcome() const noexcept { return outcome_; }
    /// @brief 1 for the first attempt, 2 for the first retry, and so on.
    [[nodiscard]] unsigned attempt() const noexcept { return attempt_; }

    /// @cond internal
    delivery_info(const detail::frame& f, phase when, completion outcome, unsigned attempt) noexcept
        : frame_(&f), when_(when), outcome_(outcome), attempt_(attempt) {}
    /// @endcond

private:
    const detail::frame* frame_;
    phase when_;
    completion outcome_;
    unsigned attempt_;
};

} // namespace choreo
