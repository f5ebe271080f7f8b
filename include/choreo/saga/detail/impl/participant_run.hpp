#pragma once
// participant_core, running: a saga's start, its steps, the fan-ins they complete, and the
// aggregates they hold.

#include <choreo/saga/participant.hpp>

namespace choreo::saga::detail {

inline void participant_core::begin_saga(const step_def& def, const correlation_key& key,
                                         std::shared_ptr<step_call> call, unit_of_work* unit) {
    auto& clock = rt_->clock();
    auto now = clock.now();
    auto timeout = rt_->options().timeout;
    auto deadline = timeout.count() > 0 ? now + timeout : time_point::max();
    rt_->admission().enter(key.view());
    bool created = false;
    try {
        created =
            rt_->store().create(key.view(), now, deadline, def.name, unit ? step_state::claimed : step_state::done);
    } catch (...) {
        rt_->admission().leave(key.view(), false);
        throw;
    }
    if (!created) {
        rt_->admission().leave(key.view(), false);
        throw saga_exists_error(fmt::format("a saga with key '{}' exists already", key.view()));
    }
    if (unit && def.journal && !def.journal->record(key.view(), def.name, call->payload, false, {}))
        throw saga_exists_error(fmt::format("the journal has a start of saga '{}' already", key.view()));
    keep(std::move(call));
    if (unit) unit->publish(saga_started{std::string{key.view()}, def.name}, key);
    if (timeout.count() > 0) rt_->watch(std::string{key.view()}, timeout);
}

inline void participant_core::run(const std::shared_ptr<step_call>& call, unsigned attempt) noexcept {
    in_flight guard{*this};
    if (!guard) return;
    try {
        run_step(call, attempt);
    } catch (...) {
        rt_->report(
            saga_incident_kind::step_failed, call->key.view(), call->def->name,
            fmt::format("the saga store or bus failed around the step: {}", describe(std::current_exception())));
    }
}

inline void participant_core::on_started(const saga_started& event, completion outcome, const envelope& env) noexcept {
    if (!owns(event.step)) return;
    in_flight guard{*this};
    if (!guard) return;
    // The start ran in its caller's unit of work, which has just ended.
    rt_->trace(event.key, event.step, saga_work::start,
               outcome == completion::committed ? std::string_view{} : "its unit of work rolled back",
               std::chrono::steady_clock::now());
    try {
        if (outcome == completion::committed) {
            auto t = rt_->store().finish(event.key, event.step, true);
            if (t.found && t.status != saga_status::running)
                if (auto call = kept(event.key, event.step)) undo_late(call, env);
            return;
        }
        forget(event.key, event.step);
        constexpr std::string_view reason = "the unit of work that started the saga rolled back";
        rt_->announce(event.key, rt_->store().roll_back(event.key, reason, event.step), reason, event.step);
    } catch (...) {
        rt_->report(saga_incident_kind::step_failed, event.key, event.step,
                    fmt::format("recording the start failed: {}", describe(std::current_exception())));
    }
}

inline void participant_core::hold(const step_call& call, std::string_view aggregate) {
    auto now = rt_->clock().now();
    if (call.wait_until == time_point{}) call.wait_until = now + rt_->options().marker_wait;
    std::string_view key = call.key.view();
    auto got = rt_->store().acquire(aggregate, key, now, now + rt_->options().marker_ttl, call.wait_until);
    if (got.acquired || got.queued) {
        // A saga in a marker's queue stays there until it ends, whose release takes it out.
        std::lock_guard lock{mutex_};
        auto& markers = memory_[std::string{key}].markers;
        if (std::find(markers.begin(), markers.end(), aggregate) == markers.end()) markers.emplace_back(aggregate);
    }
    if (!got.acquired) throw aggregate_busy{std::string{aggregate}, std::move(got.holder), got.queued, got.ahead};
}

inline void participant_core::wait_or_refuse(const std::shared_ptr<step_call>& call, unsigned attempt,
                                             const aggregate_busy& busy) {
    std::string_view key = call->key.view();
    const std::string& step = call->def->name;
    if (!busy.queued) {
        auto reason = fmt::format("'{}' stayed in progress for saga {} through the {} ms wait", busy.aggregate,
                                  busy.holder, rt_->options().marker_wait.count());
        rt_->report(saga_incident_kind::contention_exhausted, key, step, reason);
        rt_->fail(key, reason, step);
        return;
    }
    auto left = std::chrono::ceil<std::chrono::milliseconds>(call->wait_until - rt_->clock().now());
    rt_->report(saga_incident_kind::aggregate_busy, key, step,
                fmt::format("'{}' is in progress for saga {}; waiting, {} ahead, up to {} ms more", busy.aggregate,
                            busy.holder, busy.ahead, left.count()));
    auto resume = [weak = weak_from_this(), call, attempt] {
        if (auto self = weak.lock())
            self->retry_later(std::chrono::milliseconds{0},
                              [call, attempt](participant_core& core) { core.run(call, attempt + 1); });
    };
    auto wait = rt_->waiters().add(busy.aggregate, key, busy.holder, resume);
    if (wait.id == 0) return; // handed over already
    // The holder ended here, yet the marker was not free: its hand-over is due from the
    // process that held it, which tells only its own waiters; look again shortly.
    auto check = wait.holder_ended ? std::min(left, std::chrono::milliseconds{10}) : left;
    rt_->clock().after(
        std::max(check, std::chrono::milliseconds{0}),
        [weak = weak_from_this(), call, attempt, id = wait.id] {
            auto self = weak.lock();
            if (!self || !self->rt_->waiters().withdraw(id)) return;
            self->deliver([self, call, attempt] { self->run(call, attempt + 1); });
        },
        task_kind::watchdog);
}

inline void participant_core::run_step(const std::shared_ptr<step_call>& call, unsigned attempt) {
    auto& store = rt_->store();
    const std::string& step = call->def->name;
    std::string_view key = call->key.view();
    causation_scope scope{call->cause};
    if (key.empty()) {
        rt_->report(
            saga_incident_kind::missing_saga_key, key, step,
            fmt::format("{} arrived with no saga key: start sagas with participant::start()", call->cause.type_name));
        return;
    }
    if (attempt == 1) {
        switch (store.claim(key, step)) {
        case claim_outcome::claimed: break;
        case claim_outcome::duplicate:
            rt_->report(saga_incident_kind::duplicate_step, key, step, "delivered again; skipped");
            return;
        case claim_outcome::not_running:
            rt_->report(saga_incident_kind::step_too_late, key, step, "the saga has ended or is rolling back; skipped");
            return;
        case claim_outcome::unknown:
            rt_->report(saga_incident_kind::unknown_saga, key, step, "no such saga in the store; skipped");
            return;
        }
    } else if (store.status(key) != saga_status::running) {
        auto t = store.finish(key, step, false);
        rt_->report(saga_incident_kind::step_too_late, key, step,
                    "the saga ended or began rolling back while the step waited for an aggregate");
        rt_->announce(key, t, {}, {});
        // A rollback that found the step claimed stopped there: go on with the steps before it.
        unwind(key, call->cause, call->order);
        return;
    }
    keep(call);

    std::optional<aggregate_busy> busy;
    std::optional<std::string> failure;
    bool complete = false;
    const auto started = std::chrono::steady_clock::now();
    try {
        check_fault(step);
        auto unit = rt_->events().begin(resource_);
        step_context context{*this, *call, call->cause, unit, false};
        call->action(context);
        if (const auto& journal = call->def->journal;
            journal && !journal->record(key, step, call->payload, context.complete_, markers_of(key)))
            throw recorded_already{};
        unit.commit();
        complete = context.complete_;
    } catch (aggregate_busy& b) {
        busy = std::move(b);
    } catch (const recorded_already&) {
        forget(key, step);
        rt_->report(saga_incident_kind::duplicate_step, key, step,
                    "the journal has the step already (committed by another delivery, or abandoned); skipped");
        return;
    } catch (...) {
        failure = describe(std::current_exception());
        // The delivery that ran the step returns normally (the saga rolls back instead):
        // its trace says failed, with the step's reason.
        note_handled_failure(std::current_exception());
    }

    if (busy) {
        forget(key, step);
        wait_or_refuse(call, attempt, *busy);
        return;
    }
    rt_->trace(key, step, call->def->type == step_def::kind::join ? saga_work::join : saga_work::step,
               failure ? std::string_view{*failure} : std::string_view{}, started);
    if (failure) {
        forget(key, step);
        rt_->report(saga_incident_kind::step_failed, key, step, *failure);
        rt_->fail(key, *failure, step);
        return;
    }

    // The finish, the fan-ins waiting for the step and the completion in one store operation
    // (one round trip to Redis). A completion waits for the fan-ins' own steps, which run
    // below, so it goes with the finish only when no fan-in waits for this step.
    const auto joins = joins_waiting_for(step);
    std::vector<std::string_view> join_names;
    for (const step_def* join : joins) join_names.push_back(join->name);
    const bool complete_with_finish = complete && joins.empty();
    auto finished = store.finish_step(key, step, join_names, complete_with_finish);
    const auto& t = finished.finished;
    if (!t.found) {
        rt_->report(saga_incident_kind::unknown_saga, key, step, "the saga vanished from the store while the step ran");
        return;
    }
    if (t.status != saga_status::running) {
        // Rolled back while the step ran: undo it (and the steps before it) in turn.
        undo_late(call, call->cause);
        return;
    }
    for (std::size_t i = 0; i < joins.size() && i < finished.arrivals.size(); ++i)
        run_join_if_complete(call, *joins[i], finished.arrivals[i], false);
    if (complete_with_finish && finished.completed)
        rt_->announce(key, *finished.completed, {}, {});
    else if (complete)
        rt_->announce(key, store.complete(key), {}, {});
}

inline void participant_core::run_join_if_complete(const std::shared_ptr<step_call>& call, const step_def& join,
                                                   const join_outcome& arrival, bool resuming) {
    if (!arrival.found || !(arrival.added || resuming) || arrival.arrived != join.branches.size()) return;
    auto joined = std::make_shared<step_call>(
        step_call{&join, call->key, call->cause, join.join_action, join.join_compensation, {}});
    run_step(joined, 1); // a join claimed already is refused by the barrier
}

inline void participant_core::after_finish(const std::shared_ptr<step_call>& call, bool complete, bool resuming) {
    auto& store = rt_->store();
    std::string_view key = call->key.view();
    for (const step_def* join : joins_waiting_for(call->def->name))
        run_join_if_complete(call, *join, store.join(key, join->name, call->def->name), resuming);
    if (complete) rt_->announce(key, store.complete(key), {}, {});
}

} // namespace choreo::saga::detail
