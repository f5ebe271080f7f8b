#pragma once
// The engine behind saga::participant: the steps it defines, the calls it keeps until a
// saga ends, and participant_core, which runs steps (impl/participant_run.hpp), unwinds
// compensations (impl/participant_unwind.hpp) and recovers from the journal
// (impl/participant_recover.hpp). Not part of the API; saga/participant.hpp includes all.

#include <algorithm>
#include <atomic>
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

namespace choreo::saga {

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
    // The end of its wait for a held aggregate, set when it first waits, so that waking and
    // queueing again does not extend the wait. Only the thread running the step touches it.
    mutable time_point wait_until{};
};

// Thrown inside a journaled step's transaction when its journal has the step already
// (committed by another delivery, or abandoned): the transaction rolls back, nothing else.
struct recorded_already {};

// Thrown by step_context::hold() and caught by the participant: the step waits in the
// aggregate's queue (queued) or, past its wait, is refused.
struct aggregate_busy {
    std::string aggregate;
    std::string holder;
    bool queued = false;
    std::size_t ahead = 0;
};

class participant_core;

} // namespace detail

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
    bool owns_any(const std::vector<std::string>& steps) const noexcept {
        return std::any_of(steps.begin(), steps.end(), [this](const std::string& s) { return owns(s); });
    }

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
                    unit_of_work* unit);

    void check_fault(std::string_view name) {
        if (auto* faults = rt_->options().faults) faults->check(name);
    }

    void run(const std::shared_ptr<step_call>& call, unsigned attempt) noexcept;

    void compensate(const std::shared_ptr<step_call>& call, const envelope& cause, unsigned attempt,
                    bool begun) noexcept;

    void on_rolled_back(const saga_rolled_back& event, const envelope& env) noexcept;

    void on_ended(const saga_ended& event) noexcept;

    void on_started(const saga_started& event, completion outcome, const envelope& env) noexcept;

    void hold(const step_call& call, std::string_view aggregate);

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
            if (d->type == step_def::kind::join &&
                std::find(d->branches.begin(), d->branches.end(), step) != d->branches.end())
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

    void run_step(const std::shared_ptr<step_call>& call, unsigned attempt);

    // The step found an aggregate held: it waits in the marker's queue, or is refused.
    void wait_or_refuse(const std::shared_ptr<step_call>& call, unsigned attempt, const aggregate_busy& busy);

    // Releases the markers of a saga that ended; a marker handed to a waiter of this
    // process wakes it.
    void release_markers(std::string_view key, const std::vector<std::string>& markers);

    // A step is done and its saga runs: the fan-ins waiting for it, and the completion it
    // asked for. `resuming`: after a restart, when the arrival may be recorded already.
    void after_finish(const std::shared_ptr<step_call>& call, bool complete, bool resuming);

    // Runs `join` when `arrival` was the last of its branches (or, `resuming`, found them all).
    void run_join_if_complete(const std::shared_ptr<step_call>& call, const step_def& join, const join_outcome& arrival,
                              bool resuming);

public:
    // After a restart: every saga this participant's journals hold rows of (it has not heard
    // it end) is settled. A running saga gets what the dead process did not tell the store:
    // committed steps finished, fan-ins joined, completions made. A saga rolling back is
    // unwound as if its rollback was heard; an ended one releases its markers.
    std::size_t resume();

private:
    void resume_running(journal_ref& journal, const saga_record& record, const envelope& cause);

    std::vector<std::string> markers_of(std::string_view key);

    const step_def* def_named(std::string_view name) const;

    // Before a rollback is unwound: this participant's journaled steps of the saga that no
    // delivery of this process holds (it restarted, or a step waits for an aggregate) are
    // settled from the journal. A claimed step that committed is finished and will be
    // compensated; one that did not is abandoned (so it never commits) and failed. A done
    // step is compensated from its recorded event; a compensation cut off is run again.
    bool recover(const saga_record& record, const envelope& cause);

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
    void undo_late(const std::shared_ptr<step_call>& call, const envelope& cause);

    bool newer_to_undo(std::string_view key, std::uint64_t order);

    // A continuation (`rollback_event` false) may meet steps another thread compensated
    // meanwhile: that is expected, and not reported as a duplicate.
    void unwind(std::string_view key, const envelope& cause, std::uint64_t before, bool rollback_event = false);

    unwinding compensate_step(const std::shared_ptr<step_call>& call, const envelope& cause, unsigned attempt,
                              bool begun, bool report_duplicate = true);

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

} // namespace choreo::saga
