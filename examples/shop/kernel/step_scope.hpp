#pragma once
// What a step's code may do, whatever the mode it runs in (kernel/wiring.hpp).

#include <choreo/core/bus.hpp>
#include <choreo/saga/participant.hpp>

#include <string>

namespace shop::kernel {

// What a step's code may do, whatever the mode.
class step_scope {
public:
    step_scope(choreo::unit_of_work& unit, choreo::saga::step_context* saga) noexcept : unit_(unit), saga_(saga) {}
    [[nodiscard]] choreo::unit_of_work& unit() const noexcept { return unit_; }
    [[nodiscard]] bool in_saga() const noexcept { return saga_ != nullptr; }
    // Saga: marks the aggregate in progress (another saga waits). Transactional: nothing to
    // do, the transaction holds the database.
    void hold(const std::string& aggregate) const {
        if (saga_) saga_->hold(aggregate);
    }
    // Saga: the saga completes when this step commits.
    void complete_saga() const {
        if (saga_) saga_->complete_saga();
    }

private:
    choreo::unit_of_work& unit_;
    choreo::saga::step_context* saga_;
};

// A step that takes part for every event.
struct always {
    template <class E>
    constexpr bool operator()(const E&) const noexcept {
        return true;
    }
};

} // namespace shop::kernel
