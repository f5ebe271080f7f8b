#pragma once
// What a step's code may do, whatever the mode it runs in (kernel/wiring.hpp).

#include <choreo/core/bus.hpp>
#include <choreo/saga/participant.hpp>
#include <choreo/sqlite/reservations.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

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
    // Saga: records in `ledger` that the saga holds `amount` of `account`, which the step has
    // just taken from its counter in this transaction; others go on against what is left,
    // nobody waits. Transactional: nothing to record, the transaction commits it all at once.
    void reserve(choreo::sqlite::reservations* ledger, const std::string& account, std::int64_t amount) const {
        if (saga_) in_saga_mode(ledger).reserve(*saga_, account, amount);
    }
    // In a compensation (saga mode): what the step reserved, removed from `ledger`, for the
    // compensation to give back; empty if it was given back already.
    [[nodiscard]] std::vector<choreo::sqlite::reservation> release(choreo::sqlite::reservations* ledger) const {
        if (!saga_) return {};
        return in_saga_mode(ledger).release(*saga_);
    }
    // Saga: the saga completes when this step commits.
    void complete_saga() const {
        if (saga_) saga_->complete_saga();
    }

private:
    // A step that reserves runs with a ledger in saga mode, or its compensation would have
    // nothing to give back.
    static choreo::sqlite::reservations& in_saga_mode(choreo::sqlite::reservations* ledger) {
        if (!ledger) throw std::logic_error("a saga step reserves, but its context was given no reservations ledger");
        return *ledger;
    }
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
