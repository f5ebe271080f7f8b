#pragma once
// participant_core, recovering: after a restart, what the journal holds is settled, and a
// rollback first settles the journaled steps no delivery of this process holds.

#include <choreo/saga/participant.hpp>

namespace choreo::saga::detail {

inline std::size_t participant_core::resume() {
    in_flight guard{*this};
    if (!guard) return 0;
    std::vector<std::shared_ptr<journal_ref>> journals;
    {
        std::lock_guard lock{mutex_};
        journals = journals_;
    }
    std::size_t settled = 0;
    for (auto& journal : journals) {
        for (auto& key : journal->sagas()) {
            auto record = rt_->store().get(key);
            if (!record) continue; // expired from the store: nothing to settle against
            ++settled;
            envelope cause{};
            cause.key = correlation_key{key};
            if (record->status == saga_status::rolling_back) {
                on_rolled_back(saga_rolled_back{key, record->reason, record->failed_step, record->step_names()}, cause);
            } else if (has_ended(record->status)) {
                on_ended(saga_ended{key, record->status});
            } else {
                resume_running(*journal, *record, cause);
            }
        }
    }
    return settled;
}

inline void participant_core::resume_running(journal_ref& journal, const saga_record& record, const envelope& cause) {
    auto& store = rt_->store();
    for (auto& entry : journal.entries(record.key)) {
        if (entry.state != journal_entry::state::done || !owns(entry.step)) continue;
        const step_def* def = def_named(entry.step);
        if (!def) continue;
        auto state = record.state_of(entry.step);
        if (state != step_state::claimed && state != step_state::done) continue;
        auto call = std::make_shared<step_call>();
        call->def = def;
        call->key = correlation_key{record.key};
        call->cause = cause;
        call->payload = entry.payload;
        if (def->type == step_def::kind::join)
            call->compensation = def->join_compensation;
        else if (def->restore)
            call->compensation = def->restore(entry.payload);
        {
            std::lock_guard lock{mutex_};
            auto& markers = memory_[record.key].markers;
            for (auto& m : entry.markers)
                if (std::find(markers.begin(), markers.end(), m) == markers.end()) markers.push_back(m);
        }
        keep(call);
        if (state == step_state::claimed) {
            auto t = store.finish(record.key, entry.step, true);
            if (t.found && t.status != saga_status::running) {
                undo_late(call, cause);
                continue;
            }
        }
        after_finish(call, entry.completes, true);
    }
}

inline std::vector<std::string> participant_core::markers_of(std::string_view key) {
    std::lock_guard lock{mutex_};
    auto it = memory_.find(std::string{key});
    return it == memory_.end() ? std::vector<std::string>{} : it->second.markers;
}

inline const step_def* participant_core::def_named(std::string_view name) const {
    std::lock_guard lock{mutex_};
    for (auto& d : defs_)
        if (d->name == name) return d.get();
    return nullptr;
}

inline bool participant_core::recover(const saga_record& record, const envelope& cause) {
    auto& store = rt_->store();
    const std::string& key = record.key;
    auto held = kept_for(key);
    struct found {
        std::shared_ptr<step_call> call;
        std::uint64_t sequence;
        bool compensating;
    };
    std::vector<found> restored;
    for (auto& s : record.steps) {
        if (!owns(s.name)) continue;
        if (std::any_of(held.begin(), held.end(), [&](auto& c) { return c->def->name == s.name; })) continue;
        const step_def* def = def_named(s.name);
        if (!def || !def->journal) continue;
        auto& journal = *def->journal;
        auto state = s.state;
        if (state == step_state::claimed) {
            if (!journal.find(key, s.name)) {
                auto unit = rt_->events().begin(resource_);
                bool abandoned = journal.abandon(key, s.name);
                unit.commit();
                if (abandoned) {
                    forget(key, s.name); // a retry waiting for an aggregate finds it failed
                    rt_->report(saga_incident_kind::step_too_late, key, s.name,
                                "claimed by a delivery that never committed (its process died?); abandoned");
                    rt_->announce(key, store.finish(key, s.name, false), {}, {});
                    continue;
                }
            }
            auto entry = journal.find(key, s.name);
            if (!entry || entry->state != journal_entry::state::done) continue;
            (void)store.finish(key, s.name, true); // committed before its process died
            state = step_state::done;
        }
        if (state != step_state::done && state != step_state::compensating) continue;
        auto entry = journal.find(key, s.name);
        if (!entry) continue;
        if (entry->state == journal_entry::state::compensated) {
            if (state == step_state::compensating) rt_->announce(key, store.finish_compensation(key, s.name), {}, {});
            continue;
        }
        if (entry->state != journal_entry::state::done) continue;
        auto call = std::make_shared<step_call>();
        call->def = def;
        call->key = correlation_key{key};
        call->cause = cause;
        call->payload = entry->payload;
        if (def->restore) call->compensation = def->restore(entry->payload);
        {
            std::lock_guard lock{mutex_};
            auto& markers = memory_[key].markers;
            for (auto& m : entry->markers)
                if (std::find(markers.begin(), markers.end(), m) == markers.end()) markers.push_back(m);
        }
        restored.push_back({std::move(call), entry->sequence, state == step_state::compensating});
    }
    std::sort(restored.begin(), restored.end(), [](auto& a, auto& b) { return a.sequence < b.sequence; });
    for (auto& r : restored) keep(r.call);
    // A compensation cut off by the crash first (the newest step being undone), then the unwinding.
    for (auto& r : restored)
        if (r.compensating && compensate_step(r.call, cause, 1, true) == unwinding::stop) return false;
    return true;
}

} // namespace choreo::saga::detail
