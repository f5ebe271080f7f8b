#pragma once
// participant's template definitions: registering steps, origins and joins, and starting sagas.

#include <choreo/saga/participant.hpp>

namespace choreo::saga {

template <class E>
correlation_key participant::start_in(unit_of_work* unit, E&& event, std::string_view aggregate_id) {
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

template <event E, class Source, class Action, class Compensation, class Journal>
void participant::add_step_from(Source&& source, std::string step_name, Action action, Compensation compensation,
                                Journal* journal) {
    static_assert(std::is_invocable_v<Action&, const E&, step_context&>,
                  "a step's action takes (const E&, choreo::saga::step_context&)");
    static_assert(std::is_invocable_v<Compensation&, const E&, step_context&>,
                  "a step's compensation takes (const E&, choreo::saga::step_context&)");
    auto [name, deliver] = make_step<E>(std::move(step_name), std::move(action), std::move(compensation), journal);
    std::forward<Source>(source)(name, std::move(deliver));
}

template <class Action, class Compensation, class Journal>
void participant::add_join(std::string join_name, std::vector<std::string> branches, Action action,
                           Compensation compensation, Journal* journal) {
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
void participant::add_origin(std::string step_name, Compensation compensation, Journal* journal) {
    static_assert(std::is_invocable_v<Compensation&, const E&, step_context&>,
                  "a start's compensation takes (const E&, choreo::saga::step_context&)");
    auto shared = std::make_shared<Compensation>(std::move(compensation));
    detail::step_def def;
    def.type = detail::step_def::kind::origin;
    def.name = std::move(step_name);
    def.event_type = std::string{event_type_name<E>()};
    if constexpr (!std::is_null_pointer_v<Journal>) {
        def.journal = std::make_shared<detail::journal_adapter<Journal>>(*journal);
        def.encode = [journal](const void* event) {
            return std::string{journal->encode(*static_cast<const E*>(event))};
        };
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

template <event E, class Action, class Compensation, class Journal>
auto participant::make_step(std::string step_name, Action action, Compensation compensation, Journal* journal) {
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
        def.encode = [journal](const void* event) {
            return std::string{journal->encode(*static_cast<const E*>(event))};
        };
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
void participant::subscribe_step(std::string step_name, Action action, Compensation compensation) {
    auto [name, deliver] = make_step<E>(std::move(step_name), std::move(action), std::move(compensation));
    connections_.push_back(core_->rt().events().subscribe<E>(std::move(deliver), cross_context_options(name)));
}

inline listener_options participant::cross_context_options(std::string listener_name) const {
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

inline void participant::subscribe_saga_events() {
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

} // namespace choreo::saga
