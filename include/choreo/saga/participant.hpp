#pragma once
/// @file
/// @brief A participant of choreographed sagas: the steps one bounded context runs, each
/// with its compensation, in its own local transaction.

#include <atomic>
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <choreo/core/bus.hpp>
#include <choreo/core/causation.hpp>
#include <choreo/core/connection.hpp>
#include <choreo/core/delivery_info.hpp>
#include <choreo/core/errors.hpp>
#include <choreo/core/observe.hpp>
#include <choreo/core/resource.hpp>
#include <choreo/core/type_name.hpp>
#include <choreo/saga/events.hpp>
#include <choreo/saga/journal.hpp>
#include <choreo/saga/key.hpp>
#include <choreo/saga/runtime.hpp>

namespace choreo::saga {

/// @brief A saga with the key given to participant::start() exists already.
class saga_exists_error : public choreo::error {
public:
    using choreo::error::error;
};

class step_context;

namespace detail {

struct step_def {
    enum class kind : std::uint8_t { origin, step, join };
    kind type = kind::step;
    std::string name;                  // "participant/step"
    std::string event_type;            // the event it consumes (origin: the event it starts with)
    std::vector<std::string> branches; // join: full names of the steps it waits for
    std::function<void(step_context&)> join_action;
    std::function<void(step_context&)> join_compensation;
    // Journaled steps (see journal.hpp): where they are recorded, how an event becomes a
    // payload, and the compensation for a recorded payload (after a restart).
    std::shared_ptr<journal_ref> journal;
    std::function<std::string(const void* event)> encode;
    std::function<std::function<void(step_context&)>(const std::string& payload)> restore;
};

// One run of a step for one saga, with the consumed event bound into its action and
// compensation, kept until the saga ends so the step can be compensated.
struct step_call {
    const step_def* def = nullptr;
    correlation_key key;
    envelope cause;
    std::function<void(step_context&)> action;
    std::function<void(step_context&)> compensation; // empty: nothing to undo
    std::string payload;                             // the event, encoded, for a journaled step
    std::uint64_t order = 0;                         // when it was kept: compensations run newest first
    bool given_up = false;                           // its compensation ran out of retries
};

// Thrown inside a journaled step's transaction when its journal has the step already
// (committed by another delivery, or abandoned): the transaction rolls back, nothing else.
struct recorded_already {};

// Thrown by step_context::hold() and caught by the participant: the step waits and retries.
struct aggregate_busy {
    std::string aggregate;
    std::string holder;
};

class participant_core;

} // namespace detail

/// @brief What a step or compensation can do: publish in its local transaction (the
/// events carry the saga key and causation), mark aggregates in progress, complete the saga.
class step_context {
public:
    step_context(const step_context&) = delete;
    step_context& operator=(const step_context&) = delete;

    /// @brief The saga's key.
    [[nodiscard]] const correlation_key& saga() const noexcept { return call_->key; }
    /// @brief The step's full name, "participant/step".
    [[nodiscard]] std::string_view step() const noexcept { return call_->def->name; }
    /// @brief The local unit of work the step runs in.
    [[nodiscard]] unit_of_work& unit() const noexcept { return *unit_; }
    /// @brief The envelope of the event being handled (the rollback event, in a compensation).
    [[nodiscard]] const envelope& cause() const noexcept { return *cause_; }
    /// @brief True in a compensation.
    [[nodiscard]] bool compensating() const noexcept { return compensating_; }

    /// @brief Publishes into the step's unit of work: delivered to other contexts after it commits.
    template <class E>
    void publish(E&& event) {
        unit_->publish(std::forward<E>(event));
    }
    /// @brief Marks `aggregate` in progress for this saga until the saga ends. If another
    /// running saga holds it, the step stops here, its transaction rolls back, and it is
    /// run again after a backoff (runtime_options::contention). Do not catch what it throws.
    void hold(std::string_view aggregate);
    /// @brief Completes the saga once this step's transaction has committed.
    void complete_saga();

private:
    friend class detail::participant_core;
    step_context(detail::participant_core& core, const detail::step_call& call, const envelope& cause,
                 unit_of_work& unit, bool compensating) noexcept
        : core_(&core), call_(&call), cause_(&cause), unit_(&unit), compensating_(compensating) {}

    detail::participant_core* core_;
    const detail::step_call* call_;
    const envelope* cause_;
    unit_of_work* unit_;
    bool compensating_;
    bool complete_ = false;
};

namespace detail {

class participant_core : public std::enable_shared_from_this<participant_core> {
public:
    participant_core(std::shared_ptr<runtime_core> runtime, std::string name, choreo::detail::resource_ref resource)
        : rt_(std::move(runtime)), name_(std::move(name)), prefix_(name_ + "/"), resource_(resource) {
        if (name_.empty() || name_.find('/') != std::string::npos)
            throw usage_error(fmt::format("a participant needs a non-empty name without '/' (got '{}')", name_));
        rt_->register_participant(name_);
    }

    const std::string& name() const noexcept { return name_; }
    runtime_core& rt() noexcept { return *rt_; }
    bool owns(std::string_view step) const noexcept { return step.starts_with(prefix_); }

    const step_def& add(step_def def) {
        if (def.name.empty()) throw usage_error(fmt::format("a step of participant '{}' needs a name", name_));
        def.name = prefix_ + def.name;
        std::lock_guard lock{mutex_};
        for (auto& b : def.branches) {
            b = prefix_ + b;
            bool known = false;
            for (auto& d : defs_) known = known || (d->name == b && d->type != step_def::kind::origin);
            if (!known)
                throw usage_error(fmt::format("join '{}' waits for '{}', which is not a step of participant '{}' "
                                              "(register its branches first)",
                                              def.name, b, name_));
        }
        rt_->register_step(def.name);
        if (def.journal) {
            bool known = false;
            for (auto& j : journals_) known = known || j->identity() == def.journal->identity();
            if (!known) journals_.push_back(def.journal);
        }
        defs_.push_back(std::make_unique<step_def>(std::move(def)));
        return *defs_.back();
    }

    const step_def& origin(std::string_view event_type) const {
        std::lock_guard lock{mutex_};
        for (auto& d : defs_)
            if (d->type == step_def::kind::origin && d->event_type == event_type) return *d;
        throw usage_error(fmt::format("participant '{}' does not start sagas with {}: declare it with starts<{}>()",
                                      name_, event_type, event_type));
    }

    // Hands a delivery to the runtime's test network, or runs it now.
    void deliver(std::function<void()> work) {
        if (rt_->options().deliver)
            rt_->options().deliver(std::move(work));
        else
            work();
    }

    void begin_saga(const step_def& def, const correlation_key& key, std::shared_ptr<step_call> call,
                    unit_of_work* unit) {
        auto& clock = rt_->clock();
        auto now = clock.now();
        auto timeout = rt_->options().timeout;
        auto deadline = timeout.count() > 0 ? now + timeout : time_point::max();
        if (!rt_->store().create(key.view(), now, deadline, def.name, unit ? step_state::claimed : step_state::done))
            throw saga_exists_error(fmt::format("a saga with key '{}' exists already", key.view()));
        if (unit && def.journal && !def.journal->record(key.view(), def.name, call->payload, false, {}))
            throw saga_exists_error(fmt::format("the journal has a start of saga '{}' already", key.view()));
        keep(std::move(call));
        if (unit) unit->publish(saga_started{std::string{key.view()}, def.name}, key);
        if (timeout.count() > 0) rt_->watch(std::string{key.view()}, timeout);
    }

    void check_fault(std::string_view name) {
        if (auto* faults = rt_->options().faults) faults->check(name);
    }

    void run(const std::shared_ptr<step_call>& call, unsigned attempt) noexcept {
        in_flight guard{*this};
        if (!guard) return;
        try {
            run_step(call, attempt);
        } catch (...) {
            rt_->report(saga_incident_kind::step_failed, call->key.view(), call->def->name,
                        fmt::format("the saga store or bus failed around the step: {}",
                                    describe(std::current_exception())));
        }
    }

    void compensate(const std::shared_ptr<step_call>& call, const envelope& cause, unsigned attempt, bool begun) noexcept {
        in_flight guard{*this};
        if (!guard) return;
        try {
            if (compensate_step(call, cause, attempt, begun) == unwinding::go_on) unwind(call->key.view(), cause, call->order);
        } catch (...) {
            rt_->report(saga_incident_kind::compensation_failed, call->key.view(), call->def->name,
                        fmt::format("the saga store or bus failed around the compensation: {}",
                                    describe(std::current_exception())));
        }
    }

    void on_rolled_back(const saga_rolled_back& event, const envelope& env) noexcept {
        in_flight guard{*this};
        if (!guard) return;
        try {
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

    void on_ended(const saga_ended& event) noexcept {
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
                for (auto& entry : journal->entries(event.key))
                    for (auto& m : entry.markers)
                        if (std::find(markers.begin(), markers.end(), m) == markers.end()) markers.push_back(m);
                journal->forget(event.key);
            } catch (...) {
                rt_->report(saga_incident_kind::compensation_failed, event.key, {},
                            fmt::format("reading or clearing the step journal failed: {}", describe(std::current_exception())));
            }
        }
        for (auto& m : markers) {
            try {
                rt_->store().release(m, event.key);
            } catch (...) {
                rt_->report(saga_incident_kind::compensation_failed, event.key, {},
                            fmt::format("releasing the marker on '{}' failed (it expires by itself): {}", m,
                                        describe(std::current_exception())));
            }
        }
    }

    void on_started(const saga_started& event, completion outcome, const envelope& env) noexcept {
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

    void hold(std::string_view key, std::string_view aggregate) {
        auto now = rt_->clock().now();
        auto got = rt_->store().acquire(aggregate, key, now, now + rt_->options().marker_ttl);
        if (!got.acquired) throw aggregate_busy{std::string{aggregate}, std::move(got.holder)};
        std::lock_guard lock{mutex_};
        auto& markers = memory_[std::string{key}].markers;
        if (std::find(markers.begin(), markers.end(), aggregate) == markers.end()) markers.emplace_back(aggregate);
    }

    // Stops new work and waits for what runs now; from then on deliveries do nothing.
    void close() noexcept {
        std::unique_lock lock{mutex_};
        closed_ = true;
        idle_.wait(lock, [&] { return running_ == 0; });
    }

private:
    struct saga_memory {
        std::vector<std::shared_ptr<step_call>> steps;
        std::vector<std::string> markers;
    };

    class in_flight {
    public:
        explicit in_flight(participant_core& core) noexcept : core_(core) {
            std::lock_guard lock{core_.mutex_};
            entered_ = !core_.closed_;
            if (entered_) ++core_.running_;
        }
        ~in_flight() {
            if (!entered_) return;
            std::lock_guard lock{core_.mutex_};
            if (--core_.running_ == 0) core_.idle_.notify_all();
        }
        in_flight(const in_flight&) = delete;
        in_flight& operator=(const in_flight&) = delete;
        explicit operator bool() const noexcept { return entered_; }

    private:
        participant_core& core_;
        bool entered_ = false;
    };

    void keep(std::shared_ptr<step_call> call) {
        std::lock_guard lock{mutex_};
        call->order = ++kept_count_;
        memory_[std::string{call->key.view()}].steps.push_back(std::move(call));
    }
    std::shared_ptr<step_call> kept(std::string_view key, std::string_view step) {
        std::lock_guard lock{mutex_};
        auto it = memory_.find(std::string{key});
        if (it == memory_.end()) return nullptr;
        for (auto& c : it->second.steps)
            if (c->def->name == step) return c;
        return nullptr;
    }
    std::vector<std::shared_ptr<step_call>> kept_for(std::string_view key) {
        std::lock_guard lock{mutex_};
        auto it = memory_.find(std::string{key});
        return it == memory_.end() ? std::vector<std::shared_ptr<step_call>>{} : it->second.steps;
    }
    void forget(std::string_view key, std::string_view step) {
        std::lock_guard lock{mutex_};
        auto it = memory_.find(std::string{key});
        if (it == memory_.end()) return;
        std::erase_if(it->second.steps, [&](auto& c) { return c->def->name == step; });
        if (it->second.steps.empty() && it->second.markers.empty()) memory_.erase(it);
    }
    std::vector<const step_def*> joins_waiting_for(std::string_view step) const {
        std::vector<const step_def*> joins;
        std::lock_guard lock{mutex_};
        for (auto& d : defs_)
            if (d->type == step_def::kind::join && std::find(d->branches.begin(), d->branches.end(), step) != d->branches.end())
                joins.push_back(d.get());
        return joins;
    }

    void retry_later(std::chrono::milliseconds delay, std::function<void(participant_core&)> work) {
        rt_->clock().after(
            delay,
            [weak = weak_from_this(), work = std::move(work)]() mutable {
                auto self = weak.lock();
                if (!self) return;
                self->deliver([self, work = std::move(work)] { work(*self); });
            },
            task_kind::work);
    }

    void run_step(const std::shared_ptr<step_call>& call, unsigned attempt) {
        auto& store = rt_->store();
        const std::string& step = call->def->name;
        std::string_view key = call->key.view();
        causation_scope scope{call->cause};
        if (key.empty()) {
            rt_->report(saga_incident_kind::missing_saga_key, key, step,
                        fmt::format("{} arrived with no saga key: start sagas with participant::start()",
                                    call->cause.type_name));
            return;
        }
        if (attempt == 1) {
            switch (store.claim(key, step)) {
            case claim_outcome::claimed: break;
            case claim_outcome::duplicate:
                rt_->report(saga_incident_kind::duplicate_step, key, step, "delivered again; skipped");
                return;
            case claim_outcome::not_running:
                rt_->report(saga_incident_kind::step_too_late, key, step,
                            "the saga has ended or is rolling back; skipped");
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
            const auto& policy = rt_->options().contention;
            if (attempt <= policy.delayed_retries) {
                auto delay = policy.delay_before(attempt - 1);
                rt_->report(saga_incident_kind::aggregate_busy, key, step,
                            fmt::format("'{}' is in progress for saga {}; retry {} of {} in {} ms", busy->aggregate,
                                        busy->holder, attempt, policy.delayed_retries, delay.count()));
                retry_later(delay, [call, attempt](participant_core& self) { self.run(call, attempt + 1); });
            } else {
                auto reason = fmt::format("'{}' stayed in progress for saga {} through {} retries", busy->aggregate,
                                          busy->holder, policy.delayed_retries);
                rt_->report(saga_incident_kind::contention_exhausted, key, step, reason);
                rt_->fail(key, reason, step);
            }
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

        auto t = store.finish(key, step, true);
        if (!t.found) {
            rt_->report(saga_incident_kind::unknown_saga, key, step, "the saga vanished from the store while the step ran");
            return;
        }
        if (t.status != saga_status::running) {
            // Rolled back while the step ran: undo it (and the steps before it) in turn.
            undo_late(call, call->cause);
            return;
        }
        after_finish(call, complete, false);
    }

    // A step is done and its saga runs: the fan-ins waiting for it, and the completion it
    // asked for. `resuming`: after a restart, when the arrival may be recorded already.
    void after_finish(const std::shared_ptr<step_call>& call, bool complete, bool resuming) {
        auto& store = rt_->store();
        std::string_view key = call->key.view();
        for (const step_def* join : joins_waiting_for(call->def->name)) {
            auto arrival = store.join(key, join->name, call->def->name);
            if (arrival.found && (arrival.added || resuming) && arrival.arrived == join->branches.size()) {
                auto joined = std::make_shared<step_call>(
                    step_call{join, call->key, call->cause, join->join_action, join->join_compensation, {}});
                run_step(joined, 1); // a join claimed already is refused by the barrier
            }
        }
        if (complete) rt_->announce(key, store.complete(key), {}, {});
    }

public:
    // After a restart: every saga this participant's journals hold rows of (it has not heard
    // it end) is settled. A running saga gets what the dead process did not tell the store:
    // committed steps finished, fan-ins joined, completions made. A saga rolling back is
    // unwound as if its rollback was heard; an ended one releases its markers.
    std::size_t resume() {
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
                    on_rolled_back(saga_rolled_back{key, record->reason, record->failed_step}, cause);
                } else if (has_ended(record->status)) {
                    on_ended(saga_ended{key, record->status});
                } else {
                    resume_running(*journal, *record, cause);
                }
            }
        }
        return settled;
    }

private:
    void resume_running(journal_ref& journal, const saga_record& record, const envelope& cause) {
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
            if (def->type == step_def::kind::join) call->compensation = def->join_compensation;
            else if (def->restore) call->compensation = def->restore(entry.payload);
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

    std::vector<std::string> markers_of(std::string_view key) {
        std::lock_guard lock{mutex_};
        auto it = memory_.find(std::string{key});
        return it == memory_.end() ? std::vector<std::string>{} : it->second.markers;
    }

    const step_def* def_named(std::string_view name) const {
        std::lock_guard lock{mutex_};
        for (auto& d : defs_)
            if (d->name == name) return d.get();
        return nullptr;
    }

    // Before a rollback is unwound: this participant's journaled steps of the saga that no
    // delivery of this process holds (it restarted, or a step waits for an aggregate) are
    // settled from the journal. A claimed step that committed is finished and will be
    // compensated; one that did not is abandoned (so it never commits) and failed. A done
    // step is compensated from its recorded event; a compensation cut off is run again.
    bool recover(const saga_record& record, const envelope& cause) {
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

    // Whether the steps before a compensated one may be compensated now.
    enum class unwinding { go_on, stop };

    // Compensates this participant's kept steps of saga `key` that were kept before `before`,
    // newest first, as a transaction log is undone: a later step may rely on an earlier one.
    // It stops at a step still running or being compensated elsewhere: whoever finishes that
    // one goes on from there, so the order holds whichever thread gets there first.
    // A step that finished after its saga began rolling back. If steps newer than it are
    // still to be undone, the unwinding under way undoes them and then this one (it will
    // find it done); otherwise the unwinding stopped at this step while it ran, so undoing
    // it, and then the steps before it, is for this thread to do.
    void undo_late(const std::shared_ptr<step_call>& call, const envelope& cause) {
        if (newer_to_undo(call->key.view(), call->order)) return;
        if (compensate_step(call, cause, 1, false) == unwinding::go_on) unwind(call->key.view(), cause, call->order);
    }

    bool newer_to_undo(std::string_view key, std::uint64_t order) {
        std::lock_guard lock{mutex_};
        auto it = memory_.find(std::string{key});
        if (it == memory_.end()) return false;
        for (auto& c : it->second.steps)
            if (c->order > order && !c->given_up) return true;
        return false;
    }

    // A continuation (`rollback_event` false) may meet steps another thread compensated
    // meanwhile: that is expected, and not reported as a duplicate.
    void unwind(std::string_view key, const envelope& cause, std::uint64_t before, bool rollback_event = false) {
        auto calls = kept_for(key);
        for (auto it = calls.rbegin(); it != calls.rend(); ++it) {
            if ((*it)->order >= before) continue;
            if (compensate_step(*it, cause, 1, false, rollback_event) == unwinding::stop) return;
        }
    }

    unwinding compensate_step(const std::shared_ptr<step_call>& call, const envelope& cause, unsigned attempt, bool begun,
                              bool report_duplicate = true) {
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
                rt_->report(saga_incident_kind::compensation_failed, key, step,
                            fmt::format("{}; retry {} of {} in {} ms", error, attempt, policy.delayed_retries,
                                        delay.count()));
                retry_later(delay, [call, cause, attempt](participant_core& self) {
                    self.compensate(call, cause, attempt + 1, true);
                });
                return unwinding::stop; // the retry goes on when it is done
            }
            rt_->report(saga_incident_kind::compensation_exhausted, key, step,
                        fmt::format("{}; gave up after {} retries, the saga stays rolling_back", error,
                                    policy.delayed_retries));
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

    std::shared_ptr<runtime_core> rt_;
    std::string name_;
    std::string prefix_;
    choreo::detail::resource_ref resource_;
    mutable std::mutex mutex_;
    std::condition_variable idle_;
    std::size_t running_ = 0;
    std::uint64_t kept_count_ = 0;
    bool closed_ = false;
    std::vector<std::unique_ptr<step_def>> defs_;
    std::vector<std::shared_ptr<journal_ref>> journals_;
    std::unordered_map<std::string, saga_memory> memory_;
};

} // namespace detail

inline void step_context::hold(std::string_view aggregate) {
    if (compensating_) throw usage_error("hold() is for steps: a compensation undoes what its step already held");
    core_->hold(call_->key.view(), aggregate);
}

inline void step_context::complete_saga() {
    if (compensating_) throw usage_error("complete_saga() is for steps, not compensations");
    complete_ = true;
}

/// @brief One bounded context's part in choreographed sagas: its steps (each with its
/// compensation), the sagas it starts, and its fan-ins. Every step runs in a local unit
/// of work on the participant's resource; the barrier in the rollback-state store makes
/// duplicated, late and out-of-order deliveries harmless. Thread-safe.
///
/// Register steps before sagas start. Destroying it unsubscribes and waits for steps
/// running now; do not destroy it from inside one of its own steps.
class participant {
public:
    /// @brief A participant whose steps run in transactions on `resource` (which must outlive it).
    template <transactional_resource R>
    participant(runtime& sagas, std::string name, R& resource)
        : core_(std::make_shared<detail::participant_core>(sagas.core_, std::move(name),
                                                           choreo::detail::resource_ref::to(resource))) {
        subscribe_saga_events();
    }
    /// @brief A participant with no resource of its own (its units of work only order listeners).
    participant(runtime& sagas, std::string name)
        : core_(std::make_shared<detail::participant_core>(sagas.core_, std::move(name),
                                                           choreo::detail::resource_ref{})) {
        subscribe_saga_events();
    }
    ~participant() {
        connections_.clear();
        core_->close();
        core_->rt().unregister_participant(core_->name());
    }
    participant(const participant&) = delete;
    participant& operator=(const participant&) = delete;

    /// @brief The participant's name, the prefix of its steps' names.
    [[nodiscard]] const std::string& name() const noexcept { return core_->name(); }

    /// @brief A step run for each event E of a saga: `action(const E&, step_context&)` in a
    /// local transaction; `compensation(const E&, step_context&)` undoes it if the saga rolls back.
    template <event E, class Action, class Compensation>
    void step(std::string step_name, Action action, Compensation compensation) {
        static_assert(std::is_invocable_v<Action&, const E&, step_context&>,
                      "a step's action takes (const E&, choreo::saga::step_context&)");
        static_assert(std::is_invocable_v<Compensation&, const E&, step_context&>,
                      "a step's compensation takes (const E&, choreo::saga::step_context&)");
        subscribe_step<E>(std::move(step_name), std::move(action), std::move(compensation));
    }
    /// @brief A step with nothing to undo (it only reads, or only publishes).
    template <event E, class Action>
    void step(std::string step_name, Action action) {
        static_assert(std::is_invocable_v<Action&, const E&, step_context&>,
                      "a step's action takes (const E&, choreo::saga::step_context&)");
        subscribe_step<E>(std::move(step_name), std::move(action), nullptr);
    }

    /// @brief As step(), but the step's events come from `source` instead of the bus.
    /// `source(listener_name, deliver)` must arrange for `deliver(const E&, const envelope&)`
    /// to be called for each event E, on any thread: a durable outbox's listener, a
    /// transport's consumer. `deliver` runs the step on the calling thread and returns once
    /// its transaction committed, or the barrier refused it (a duplicate), or it failed and
    /// the saga is rolling back; so a durable source records a delivery only after the step
    /// is done, and a redelivery is refused by the barrier. A step that finds its aggregate
    /// busy returns at once and is retried on the runtime's timer.
    template <event E, class Source, class Action, class Compensation>
    void step_from(Source&& source, std::string step_name, Action action, Compensation compensation) {
        add_step_from<E>(std::forward<Source>(source), std::move(step_name), std::move(action), std::move(compensation),
                         static_cast<std::nullptr_t*>(nullptr));
    }

    /// @brief As step_from(), with the step recorded in `journal` (on the participant's own
    /// resource; see journal.hpp): what a process that dies mid-saga needs to be settled
    /// and compensated after it restarts. `journal` must outlive the participant.
    template <event E, class Source, class Action, class Compensation, step_journal J>
    void step_from(Source&& source, std::string step_name, Action action, Compensation compensation, J& journal) {
        add_step_from<E>(std::forward<Source>(source), std::move(step_name), std::move(action), std::move(compensation),
                         &journal);
    }

    /// @brief After a restart, settles the sagas this participant's journals hold rows of:
    /// finishes the steps a dead process committed but did not report, joins and completes
    /// what they were waiting for, unwinds the sagas rolling back, and releases the markers
    /// of those that ended. Call it once, after the steps are registered and the events can
    /// flow (a saga bridge started). Returns how many sagas it looked at.
    std::size_t resume() { return core_->resume(); }

    /// @brief A fan-in: `action(step_context&)` runs once per saga, in its own transaction,
    /// after every step in `branches` (steps of this participant) has committed, whichever
    /// arrives last; `compensation(step_context&)` undoes it.
    template <class Action, class Compensation>
    void join(std::string join_name, std::vector<std::string> branches, Action action, Compensation compensation) {
        add_join(std::move(join_name), std::move(branches), std::move(action), std::move(compensation),
                 static_cast<std::nullptr_t*>(nullptr));
    }
    /// @brief As join(), with the fan-in recorded in `journal` (see step_from with a journal).
    template <class Action, class Compensation, step_journal J>
    void join(std::string join_name, std::vector<std::string> branches, Action action, Compensation compensation,
              J& journal) {
        add_join(std::move(join_name), std::move(branches), std::move(action), std::move(compensation), &journal);
    }

    /// @brief Declares that this participant starts sagas with event E; `compensation(const E&,
    /// step_context&)` undoes the starting transaction's work if the saga rolls back.
    template <event E, class Compensation>
    void starts(std::string step_name, Compensation compensation) {
        add_origin<E>(std::move(step_name), std::move(compensation), static_cast<std::nullptr_t*>(nullptr));
    }
    /// @brief As starts(), with the start recorded in `journal` inside the starting unit of
    /// work (see step_from with a journal).
    template <event E, class Compensation, step_journal J>
    void starts(std::string step_name, Compensation compensation, J& journal) {
        add_origin<E>(std::move(step_name), std::move(compensation), &journal);
    }

    /// @brief Starts a saga with `event` inside `unit` (which should also hold the first
    /// change, say the order in CREATE_PENDING): creates its record in the store, publishes
    /// the event with the key key_for<E>(aggregate_id), and watches its deadline. If the
    /// unit rolls back, so does the saga. Throws saga_exists_error for a key in use, and a
    /// key stays in use after its start rolled back (the store is not in the unit): take
    /// another aggregate id in the same unit and start again.
    template <class E>
    correlation_key start(unit_of_work& unit, E&& event, std::string_view aggregate_id) {
        return start_in(&unit, std::forward<E>(event), aggregate_id);
    }
    /// @brief As start(unit, ...) with the thread's current unit of work, or with none (then
    /// the start counts as committed at once).
    template <class E>
    correlation_key start(E&& event, std::string_view aggregate_id) {
        return start_in(core_->rt().events().current_unit(), std::forward<E>(event), aggregate_id);
    }

private:
    template <class E>
    correlation_key start_in(unit_of_work* unit, E&& event, std::string_view aggregate_id) {
        using T = std::remove_cvref_t<E>;
        const auto& def = core_->origin(event_type_name<T>());
        auto key = key_for<T>(aggregate_id);
        std::shared_ptr<const T> copy = std::make_shared<const T>(event);
        auto call = std::make_shared<detail::step_call>();
        call->def = &def;
        call->key = key;
        call->cause.key = key;
        call->cause.type_name = event_type_name<T>();
        {
            std::lock_guard lock{origins_mutex_};
            call->compensation = origins_.at(std::string{event_type_name<T>()})(copy);
        }
        if (def.encode) call->payload = def.encode(copy.get());
        if (!unit) core_->check_fault(def.name);
        core_->begin_saga(def, key, call, unit);
        if (unit) {
            core_->check_fault(def.name); // after saga_started is in the unit: its rollback rolls the saga back
            unit->publish(std::forward<E>(event), key);
        } else {
            core_->rt().events().publish(std::forward<E>(event), key);
        }
        return key;
    }

    // The step_from(), join() and starts() overloads, with a journal or none (`Journal` is
    // std::nullptr_t).
    template <event E, class Source, class Action, class Compensation, class Journal>
    void add_step_from(Source&& source, std::string step_name, Action action, Compensation compensation,
                       Journal* journal) {
        static_assert(std::is_invocable_v<Action&, const E&, step_context&>,
                      "a step's action takes (const E&, choreo::saga::step_context&)");
        static_assert(std::is_invocable_v<Compensation&, const E&, step_context&>,
                      "a step's compensation takes (const E&, choreo::saga::step_context&)");
        auto [name, deliver] = make_step<E>(std::move(step_name), std::move(action), std::move(compensation), journal);
        std::forward<Source>(source)(name, std::move(deliver));
    }

    template <class Action, class Compensation, class Journal>
    void add_join(std::string join_name, std::vector<std::string> branches, Action action, Compensation compensation,
                  Journal* journal) {
        static_assert(std::is_invocable_v<Action&, step_context&>, "a join's action takes (choreo::saga::step_context&)");
        static_assert(std::is_invocable_v<Compensation&, step_context&>,
                      "a join's compensation takes (choreo::saga::step_context&)");
        if (branches.size() < 2) throw usage_error(fmt::format("join '{}' needs at least two branches", join_name));
        detail::step_def def;
        def.type = detail::step_def::kind::join;
        def.name = std::move(join_name);
        def.branches = std::move(branches);
        def.join_action = std::move(action);
        def.join_compensation = std::move(compensation);
        if constexpr (!std::is_null_pointer_v<Journal>) {
            def.journal = std::make_shared<detail::journal_adapter<Journal>>(*journal);
            def.restore = [undo = def.join_compensation](const std::string&) { return undo; };
        }
        (void)core_->add(std::move(def));
    }

    template <event E, class Compensation, class Journal>
    void add_origin(std::string step_name, Compensation compensation, Journal* journal) {
        static_assert(std::is_invocable_v<Compensation&, const E&, step_context&>,
                      "a start's compensation takes (const E&, choreo::saga::step_context&)");
        auto shared = std::make_shared<Compensation>(std::move(compensation));
        detail::step_def def;
        def.type = detail::step_def::kind::origin;
        def.name = std::move(step_name);
        def.event_type = std::string{event_type_name<E>()};
        if constexpr (!std::is_null_pointer_v<Journal>) {
            def.journal = std::make_shared<detail::journal_adapter<Journal>>(*journal);
            def.encode = [journal](const void* event) { return std::string{journal->encode(*static_cast<const E*>(event))}; };
            def.restore = [shared, journal](const std::string& payload) {
                auto event = std::make_shared<const E>(journal->template decode<E>(payload));
                return std::function<void(step_context&)>{
                    [shared, event](step_context& context) { (*shared)(*event, context); }};
            };
        }
        (void)core_->add(std::move(def));
        std::lock_guard lock{origins_mutex_};
        origins_.emplace(std::string{event_type_name<E>()}, [shared](std::shared_ptr<const void> event) {
            return [shared, event](step_context& context) { (*shared)(*static_cast<const E*>(event.get()), context); };
        });
    }

    // Registers the step; returns its listener name and what delivers one event to it.
    template <event E, class Action, class Compensation, class Journal = std::nullptr_t>
    auto make_step(std::string step_name, Action action, Compensation compensation, Journal* journal = nullptr) {
        (void)journal; // unused without one
        detail::step_def def;
        def.type = detail::step_def::kind::step;
        def.name = std::move(step_name);
        def.event_type = std::string{event_type_name<E>()};
        auto act = std::make_shared<Action>(std::move(action));
        std::shared_ptr<Compensation> undo;
        if constexpr (!std::is_null_pointer_v<Compensation>) undo = std::make_shared<Compensation>(std::move(compensation));
        if constexpr (!std::is_null_pointer_v<Journal>) {
            def.journal = std::make_shared<detail::journal_adapter<Journal>>(*journal);
            def.encode = [journal](const void* event) { return std::string{journal->encode(*static_cast<const E*>(event))}; };
            def.restore = [undo, journal](const std::string& payload) -> std::function<void(step_context&)> {
                if constexpr (std::is_null_pointer_v<Compensation>) {
                    return {};
                } else {
                    auto event = std::make_shared<const E>(journal->template decode<E>(payload));
                    return [undo, event](step_context& context) { (*undo)(*event, context); };
                }
            };
        }
        const auto* registered = &core_->add(std::move(def));
        auto deliver = [core = core_, registered, act, undo](const E& event, const envelope& env) {
            auto copy = std::make_shared<const E>(event);
            auto call = std::make_shared<detail::step_call>();
            call->def = registered;
            call->key = env.key;
            call->cause = env;
            if (registered->encode) call->payload = registered->encode(copy.get());
            call->action = [act, copy](step_context& context) { (*act)(*copy, context); };
            if constexpr (!std::is_null_pointer_v<Compensation>)
                call->compensation = [undo, copy](step_context& context) { (*undo)(*copy, context); };
            core->deliver([core, call] { core->run(call, 1); });
        };
        return std::pair{registered->name, std::move(deliver)};
    }

    template <event E, class Action, class Compensation>
    void subscribe_step(std::string step_name, Action action, Compensation compensation) {
        auto [name, deliver] = make_step<E>(std::move(step_name), std::move(action), std::move(compensation));
        connections_.push_back(core_->rt().events().subscribe<E>(std::move(deliver), cross_context_options(name)));
    }

    listener_options cross_context_options(std::string listener_name) const {
        const auto& o = core_->rt().options();
        listener_options options{.name = std::move(listener_name), .when = phase::after_commit};
        options.without_transaction = no_transaction_policy::run_now;
        if (!o.deliver) {
            options.mode = delivery::asynchronous;
            options.order_by = ordering::per_key;
            options.executor = o.executor;
        }
        return options;
    }

    void subscribe_saga_events() {
        auto& events = core_->rt().events();
        const auto& n = core_->name();
        connections_.push_back(events.subscribe<saga_rolled_back>(
            [core = core_](const saga_rolled_back& event, const envelope& env) {
                core->deliver([core, event, env] { core->on_rolled_back(event, env); });
            },
            cross_context_options(n + ": compensate")));
        connections_.push_back(events.subscribe<saga_ended>(
            [core = core_](const saga_ended& event) { core->deliver([core, event] { core->on_ended(event); }); },
            cross_context_options(n + ": release markers")));
        listener_options local{.name = n + ": record start", .when = phase::after_completion};
        local.without_transaction = no_transaction_policy::run_now;
        connections_.push_back(events.subscribe<saga_started>(
            [core = core_](const saga_started& event, const delivery_info& info) {
                core->on_started(event, info.outcome(), info.event_envelope());
            },
            std::move(local)));
    }

    using compensation_factory = std::function<std::function<void(step_context&)>(std::shared_ptr<const void>)>;
    std::shared_ptr<detail::participant_core> core_;
    std::vector<connection> connections_;
    std::mutex origins_mutex_;
    std::unordered_map<std::string, compensation_factory> origins_;
};

} // namespace choreo::saga
