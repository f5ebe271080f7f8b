#pragma once
// How a context's listeners are wired in each of the shop's two modes, so that a context
// writes each step once:
//   transactional: a before_commit listener in the command's one transaction (a solid
//                  arrow in the seed's diagrams); a failure rolls everything back;
//   saga:          a saga step on the context's own database, run after the previous
//                  context committed, with its compensation; its event comes through the
//                  outbox of the database it was committed in.

#include <choreo/core/bus.hpp>
#include <choreo/saga/faults.hpp>
#include <choreo/saga/participant.hpp>

#include "outboxes.hpp"
#include "step_scope.hpp"

#include <any>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <typeindex>
#include <utility>
#include <vector>

namespace shop::kernel {

// One context's wiring: the bus, its participant in saga mode, and a fault injector.
class wiring {
public:
    // In saga mode (a participant), `durable` carries the steps' events between contexts.
    wiring(choreo::bus& bus, choreo::saga::participant* participant, choreo::saga::fault_injector* faults,
           std::string context, outboxes* durable)
        : bus_(bus), participant_(participant), faults_(faults), context_(std::move(context)), durable_(durable) {
        if (participant_ && !durable_)
            throw std::logic_error("saga mode needs the outboxes that carry the steps' events");
    }

    [[nodiscard]] choreo::bus& bus() const noexcept { return bus_; }
    [[nodiscard]] choreo::saga::participant* participant() const noexcept { return participant_; }
    [[nodiscard]] const std::string& context() const noexcept { return context_; }

    // A step on event E: `action(const E&, step_scope&)`; `compensation(const E&, step_scope&)`
    // runs in saga mode when the saga rolls back after the step ran. `applies(const E&)`
    // says whether the step takes part for this event at all (the payment context charges
    // only card payments): an event it refuses never reaches the step, so the saga does not
    // wait for it, and a saga that ended meanwhile does not see it arrive too late.
    template <class E, class Action, class Compensation, class Applies = always>
    void step(const std::string& name, Action action, Compensation compensation, Applies applies = {}) {
        if (participant_) {
            auto act = [action](const E& e, choreo::saga::step_context& ctx) {
                step_scope s{ctx.unit(), &ctx};
                action(e, s);
            };
            auto undo = [compensation](const E& e, choreo::saga::step_context& ctx) {
                step_scope s{ctx.unit(), &ctx};
                compensation(e, s);
            };
            // The step's event comes through the outbox of the database it was committed in.
            auto source = [this, applies](const std::string& listener, const auto& deliver) {
                auto filtered = [applies, deliver](const E& e, const choreo::envelope& env) {
                    if (applies(e)) deliver(e, env);
                };
                durable_->subscribe<E>(listener, filtered);
                if (auto it = importers_.find(std::type_index{typeid(E)}); it != importers_.end())
                    std::any_cast<importer<E>&>(it->second)(listener, filtered);
            };
            if (journal_)
                participant_->step_from<E>(source, name, act, undo, *journal_);
            else
                participant_->step_from<E>(source, name, act, undo);
            return;
        }
        connections_.push_back(bus_.subscribe<E>(
            [this, full = context_ + "/" + name, action, applies](const E& e) {
                if (!applies(e)) return;
                check_fault(full);
                step_scope s{*bus_.current_unit(), nullptr};
                action(e, s);
            },
            {.name = context_ + "/" + name, .when = choreo::phase::before_commit}));
    }

    // Saga mode: the saga `E` starts, and what undoes its start.
    template <class E, class Compensation>
    void starts(const std::string& name, Compensation compensation) {
        if (!participant_) return;
        if (journal_)
            participant_->starts<E>(name, std::move(compensation), *journal_);
        else
            participant_->starts<E>(name, std::move(compensation));
    }
    // Saga mode: a fan-in of this context's steps (the transactional mode does its own).
    template <class Action, class Compensation>
    void join(const std::string& name, std::vector<std::string> branches, Action action, Compensation compensation) {
        if (!participant_) return;
        if (journal_)
            participant_->join(name, std::move(branches), std::move(action), std::move(compensation), *journal_);
        else
            participant_->join(name, std::move(branches), std::move(action), std::move(compensation));
    }

    // When the context runs in a process of its own, its steps are journaled in its database
    // (choreo/saga/journal.hpp), so a restarted process settles and compensates what the one
    // before it did. Set before the context is wired.
    void journal_with(journal& j) noexcept { journal_ = &j; }

    // When the context runs in a process of its own (`shop serve`), a step's events also
    // come from the other processes: `import(listener, deliver)` subscribes the step to
    // them (a consumer group on a Redis stream). Set before the context is wired.
    template <class E>
    using importer = std::function<void(const std::string& listener,
                                        std::function<void(const E&, const choreo::envelope&)> deliver)>;
    template <class E>
    void import_with(importer<E> import) {
        importers_[std::type_index{typeid(E)}] = std::move(import);
    }

    // Transactional mode: a step that runs inside other code (the order's creation in its
    // command, its confirmation in the step that brought the last branch) has no listener
    // of its own for the tracer to show; it is reported here once it ran. (In saga mode the
    // saga runtime's tracer sees it.)
    void ran(const std::string& step, const char* where) const {
        if (observer_) observer_(context_ + "/" + step, where);
    }
    void observe_steps(std::function<void(const std::string& step, const char* where)> observer) {
        observer_ = std::move(observer);
    }

    // Throws if a fault is planned for `step` (the saga runtime checks its own steps).
    void check_fault(const std::string& step) {
        if (faults_) faults_->check(step);
    }

    void keep(choreo::connection c) { connections_.push_back(std::move(c)); }

private:
    choreo::bus& bus_;
    choreo::saga::participant* participant_;
    choreo::saga::fault_injector* faults_;
    std::string context_;
    outboxes* durable_;
    std::vector<choreo::connection> connections_;
    std::map<std::type_index, std::any> importers_; // event type -> importer<E>
    journal* journal_ = nullptr;
    std::function<void(const std::string&, const char*)> observer_;
};

} // namespace shop::kernel
