#pragma once
// participant_core, unwinding: compensations, newest first, on a rollback or after a step
// that finished late; and what a saga's end releases.

#include <choreo/saga/participant.hpp>

namespace choreo::saga::detail {

inline void participant_core::compensate(const std::shared_ptr<step_call>& call, const envelope& cause,
                                         unsigned attempt, bool begun) noexcept {
    in_flight guard{*this};
    if (!guard) return;
    try {
        if (compensate_step(call, cause, attempt, begun) == unwinding::go_on)
            unwind(call->key.view(), cause, call->order);
    } catch (...) {
        rt_->report(saga_incident_kind::compensation_failed, call->key.view(), call->def->name,
                    fmt::format("the saga store or bus failed around the compensation: {}",
                                describe(std::current_exception())));
    }
}

inline void participant_core::on_rolled_back(const saga_rolled_back& event, const envelope& env) noexcept {
    in_flight guard{*this};
    if (!guard) return;
    try {
        // Every process hears every rollback; one whose participants own none of the saga's
        // steps has nothing to compensate, and the saga's record need not cross the network.
        if (!event.steps.empty() && !owns_any(event.steps) && kept_for(event.key).empty()) return;
        auto record = rt_->store().get(event.key);
        if (record && !recover(*record, env)) return; // a compensation's retry goes on from there
        auto calls = kept_for(event.key);
        unwind(event.key, env, std::numeric_limits<std::uint64_t>::max(), true);
        if (!record) return;
        for (auto& s : record->steps) {
            if (s.state != step_state::done || !owns(s.name)) continue;
            bool have = false;
            for (auto& call : calls) have = have || call->def->name == s.name;
            if (!have && rt_->store().begin_compensation(event.key, s.name) == compensation_outcome::run)
                rt_->report(saga_incident_kind::compensation_unavailable, event.key, s.name,
                            "the step is done but this process no longer holds the event it consumed "
                            "(restarted?); compensate it by hand, the saga stays rolling_back");
        }
    } catch (...) {
        rt_->report(saga_incident_kind::compensation_failed, event.key, {},
                    fmt::format("handling the rollback failed: {}", describe(std::current_exception())));
    }
}

inline void participant_core::on_ended(const saga_ended& event) noexcept {
    std::vector<std::string> markers;
    std::vector<std::shared_ptr<journal_ref>> journals;
    {
        std::lock_guard lock{mutex_};
        journals = journals_;
        auto it = memory_.find(event.key);
        if (it != memory_.end()) {
            markers = std::move(it->second.markers);
            memory_.erase(it);
        }
    }
    // A process that restarted remembers the saga's markers only through its journal.
    for (auto& journal : journals) {
        try {
            auto entries = journal->entries(event.key);
            for (auto& entry : entries)
                for (auto& m : entry.markers)
                    if (std::find(markers.begin(), markers.end(), m) == markers.end()) markers.push_back(m);
            // Every process hears every saga's end; one that ran none of its steps has
            // nothing to forget, and a write transaction for nothing is not free.
            if (!entries.empty()) journal->forget(event.key);
        } catch (...) {
            rt_->report(
                saga_incident_kind::compensation_failed, event.key, {},
                fmt::format("reading or clearing the step journal failed: {}", describe(std::current_exception())));
        }
    }
    release_markers(event.key, markers);
    rt_->waiters().ended(event.key);
    rt_->admission().leave(event.key, true);
}

inline void participant_core::release_markers(std::string_view key, const std::vector<std::string>& markers) {
    for (auto& m : markers) {
        try {
            auto released = rt_->store().release(m, key, rt_->clock().now());
            if (!released.next.empty()) rt_->waiters().handed_to(m, released.next);
        } catch (...) {
            rt_->report(saga_incident_kind::compensation_failed, key, {},
                        fmt::format("releasing the marker on '{}' failed (it expires by itself): {}", m,
                                    describe(std::current_exception())));
        }
    }
}

inline void participant_core::undo_late(const std::shared_ptr<step_call>& call, const envelope& cause) {
    if (newer_to_undo(call->key.view(), call->order)) return;
    if (compensate_step(call, cause, 1, false) == unwinding::go_on) unwind(call->key.view(), cause, call->order);
}

inline bool participant_core::newer_to_undo(std::string_view key, std::uint64_t order) {
    std::lock_guard lock{mutex_};
    auto it = memory_.find(std::string{key});
    if (it == memory_.end()) return false;
    for (auto& c : it->second.steps)
        if (c->order > order && !c->given_up) return true;
    return false;
}

inline void participant_core::unwind(std::string_view key, const envelope& cause, std::uint64_t before,
                                     bool rollback_event) {
    auto calls = kept_for(key);
    for (auto it = calls.rbegin(); it != calls.rend(); ++it) {
        if ((*it)->order >= before) continue;
        if (compensate_step(*it, cause, 1, false, rollback_event) == unwinding::stop) return;
    }
}

inline auto participant_core::compensate_step(const std::shared_ptr<step_call>& call, const envelope& cause,
                                              unsigned attempt, bool begun, bool report_duplicate) -> unwinding {
    auto& store = rt_->store();
    const std::string& step = call->def->name;
    std::string_view key = call->key.view();
    if (!begun) {
        switch (store.begin_compensation(key, step)) {
        case compensation_outcome::run: break;
        case compensation_outcome::duplicate: {
            auto record = store.get(key);
            if (record && record->state_of(step) == step_state::compensating)
                return unwinding::stop; // another thread (or a retry) is at it, and goes on after it
            if (report_duplicate)
                rt_->report(saga_incident_kind::duplicate_compensation, key, step, "compensated already; skipped");
            return unwinding::go_on;
        }
        case compensation_outcome::never_ran: forget(key, step); return unwinding::go_on;
        case compensation_outcome::pending: return unwinding::stop; // the step compensates itself, then goes on
        case compensation_outcome::not_rolling_back: return unwinding::stop;
        case compensation_outcome::unknown:
            rt_->report(saga_incident_kind::unknown_saga, key, step, "no such saga in the store");
            return unwinding::stop;
        }
    }
    causation_scope scope{cause};
    const auto started = std::chrono::steady_clock::now();
    try {
        check_fault(fault_injector::compensation_name(step));
        const auto& journal = call->def->journal;
        if (call->compensation || journal) {
            auto unit = rt_->events().begin(resource_);
            // A journaled step is compensated once: the mark commits with the compensation.
            if (!journal || journal->mark_compensated(key, step)) {
                step_context context{*this, *call, cause, unit, true};
                if (call->compensation) call->compensation(context);
            }
            unit.commit();
        }
    } catch (...) {
        const auto& policy = rt_->options().compensation;
        auto error = describe(std::current_exception());
        rt_->trace(key, step, saga_work::compensation, error, started);
        if (attempt <= policy.delayed_retries) {
            auto delay = policy.delay_before(attempt - 1);
            rt_->report(
                saga_incident_kind::compensation_failed, key, step,
                fmt::format("{}; retry {} of {} in {} ms", error, attempt, policy.delayed_retries, delay.count()));
            retry_later(delay, [call, cause, attempt](participant_core& self) {
                self.compensate(call, cause, attempt + 1, true);
            });
            return unwinding::stop; // the retry goes on when it is done
        }
        rt_->report(
            saga_incident_kind::compensation_exhausted, key, step,
            fmt::format("{}; gave up after {} retries, the saga stays rolling_back", error, policy.delayed_retries));
        {
            std::lock_guard lock{mutex_};
            call->given_up = true;
        }
        return unwinding::go_on; // the steps before it are still undone
    }
    rt_->trace(key, step, saga_work::compensation, {}, started);
    forget(key, step);
    rt_->announce(key, store.finish_compensation(key, step), {}, {});
    return unwinding::go_on;
}

} // namespace choreo::saga::detail
