#pragma once
/// @file
/// @brief A participant of choreographed sagas: the steps one bounded context runs, each
/// with its compensation, in its own local transaction.

#include <choreo/saga/detail/participant_core.hpp>

namespace choreo::saga {

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
    /// @brief Marks `aggregate` in progress for this saga until the saga ends (a semantic
    /// lock). If another saga holds it, the step stops here, its transaction rolls back, and
    /// it waits in the aggregate's queue, first come first served, to run again when the
    /// marker is handed to it; past runtime_options::marker_wait it is refused and its saga
    /// rolled back. Do not catch what it throws.
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

inline void step_context::hold(std::string_view aggregate) {
    if (compensating_) throw usage_error("hold() is for steps: a compensation undoes what its step already held");
    core_->hold(*call_, aggregate);
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
    correlation_key start_in(unit_of_work* unit, E&& event, std::string_view aggregate_id);

    // The step_from(), join() and starts() overloads, with a journal or none (`Journal` is
    // std::nullptr_t).
    template <event E, class Source, class Action, class Compensation, class Journal>
    void add_step_from(Source&& source, std::string step_name, Action action, Compensation compensation,
                       Journal* journal);

    template <class Action, class Compensation, class Journal>
    void add_join(std::string join_name, std::vector<std::string> branches, Action action, Compensation compensation,
                  Journal* journal);

    template <event E, class Compensation, class Journal>
    void add_origin(std::string step_name, Compensation compensation, Journal* journal);

    // Registers the step; returns its listener name and what delivers one event to it.
    template <event E, class Action, class Compensation, class Journal = std::nullptr_t>
    auto make_step(std::string step_name, Action action, Compensation compensation, Journal* journal = nullptr);

    template <event E, class Action, class Compensation>
    void subscribe_step(std::string step_name, Action action, Compensation compensation);

    listener_options cross_context_options(std::string listener_name) const;

    void subscribe_saga_events();

    using compensation_factory = std::function<std::function<void(step_context&)>(std::shared_ptr<const void>)>;
    std::shared_ptr<detail::participant_core> core_;
    std::vector<connection> connections_;
    std::mutex origins_mutex_;
    std::unordered_map<std::string, compensation_factory> origins_;
};

} // namespace choreo::saga

#include <choreo/saga/detail/impl/participant_recover.hpp>
#include <choreo/saga/detail/impl/participant_run.hpp>
#include <choreo/saga/detail/impl/participant_unwind.hpp>
#include <choreo/saga/impl/participant.hpp>
