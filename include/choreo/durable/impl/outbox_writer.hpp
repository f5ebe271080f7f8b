#pragma once
// The outbox, writing: durable listeners subscribed, and one row per listener written in
// the transaction that commits the event.

#include <choreo/durable/outbox.hpp>

namespace choreo::durable {

template <outbox_store Store, class Codec>
template <event E, class F>
void outbox<Store, Codec>::subscribe(F&& listener, durable_options options) {
    static_assert(codec_for<Codec, E>, "the outbox's codec cannot encode and decode this event type");
    static_assert(std::is_invocable_v<F&, const E&> || std::is_invocable_v<F&, const E&, const envelope&>,
                  "a durable listener takes (const E&) or (const E&, const envelope&)");
    auto entry = std::make_unique<listener_entry>();
    entry->deliver = [this, f = std::forward<F>(listener)](std::string_view payload, const envelope& env) mutable {
        E event = decode<E>(payload);
        if constexpr (std::is_invocable_v<F&, const E&, const envelope&>)
            f(std::as_const(event), env);
        else
            f(std::as_const(event));
    };
    add_listener<E>(std::move(entry), std::move(options));
}

template <outbox_store Store, class Codec>
template <event E, class F>
void outbox<Store, Codec>::subscribe_async(F&& listener, durable_options options) {
    static_assert(codec_for<Codec, E>, "the outbox's codec cannot encode and decode this event type");
    static_assert(std::is_invocable_v<F&, const E&, const envelope&, delivery_report>,
                  "an asynchronous durable listener takes (const E&, const envelope&, delivery_report)");
    if (options.retry.immediate_retries != 0)
        throw usage_error(fmt::format("asynchronous durable listener '{}': immediate_retries must be 0 (its "
                                      "transport retries within a round; the relay retries in delayed rounds)",
                                      options.name));
    auto entry = std::make_unique<listener_entry>();
    entry->hand_over = [this, f = std::forward<F>(listener)](std::string_view payload, const envelope& env,
                                                             delivery_report report) mutable {
        E event = decode<E>(payload);
        f(std::as_const(event), env, std::move(report));
    };
    add_listener<E>(std::move(entry), std::move(options));
}

template <outbox_store Store, class Codec>
template <class E>
void outbox<Store, Codec>::add_listener(std::unique_ptr<listener_entry> entry, durable_options options) {
    if (options.name.empty()) throw usage_error("a durable listener needs a name: rows are stored under it");
    if (!options.retry.invalid_reason().empty())
        throw usage_error(fmt::format("durable listener '{}': {}", options.name, options.retry.invalid_reason()));
    constexpr std::string_view type = event_type_name<E>();
    std::lock_guard lock{wiring_mutex_};
    if (started_)
        throw usage_error(fmt::format("durable listener '{}' subscribed after start(): subscribe every durable "
                                      "listener first, so the relay knows each row's listener",
                                      options.name));
    auto key = std::pair{std::string{type}, options.name};
    if (listeners_.contains(key))
        throw usage_error(fmt::format("a durable listener named '{}' is already subscribed to {}", options.name, type));
    entry->event_type = type;
    entry->name = options.name;
    entry->retry = std::move(options.retry);
    auto& slot = types_[std::string{type}];
    if (!slot) {
        slot = connect_type<E>();
        directory_->cover(&store_.resource(), type);
    }
    slot->listeners.push_back(entry.get());
    listeners_.emplace(std::move(key), std::move(entry));
}

template <outbox_store Store, class Codec>
template <class E>
E outbox<Store, Codec>::decode(std::string_view payload) const {
    try {
        return codec_.template decode<E>(payload);
    } catch (const codec_error&) {
        throw;
    } catch (const std::exception& e) {
        throw codec_error(fmt::format("cannot decode {}: {}", event_type_name<E>(), e.what()));
    }
}

template <outbox_store Store, class Codec>
template <class E>
auto outbox<Store, Codec>::connect_type() -> std::unique_ptr<type_entry> {
    auto entry = std::make_unique<type_entry>();
    entry->event_type = event_type_name<E>();
    type_entry* raw = entry.get();
    // Last among before_commit steps, so the rows reflect the event as committed; an
    // event published with no unit of work cannot be made durable, hence `error`.
    entry->write = bus_.subscribe<E>(
        [this, raw](const E& event, const delivery_info& info) { write_rows(*raw, event, info.event_envelope()); },
        {.name = fmt::format("choreo.outbox.write:{}", options_.relay_name),
         .when = phase::before_commit,
         .order = std::numeric_limits<int>::max(),
         .without_transaction = no_transaction_policy::error});
    entry->wake = bus_.subscribe<E>(
        [this](const E&, const delivery_info& info) {
            if (written_.outbox == this) unit_ended(info.outcome());
        },
        {.name = fmt::format("choreo.outbox.wake:{}", options_.relay_name),
         .when = phase::after_completion,
         .without_transaction = no_transaction_policy::error});
    return entry;
}

template <outbox_store Store, class Codec>
template <class E>
void outbox<Store, Codec>::write_rows(const type_entry& entry, const E& event, const envelope& env) {
    unit_of_work* unit = unit_of_work::committing();
    if (!unit) return;
    if (!unit->runs_on(store_.resource())) {
        // Another outbox of the bus writes this unit's rows; if none does, the durable
        // listeners would never receive the event: the commit fails instead.
        if (!directory_->covers(unit->resource_address(), entry.event_type)) refuse_uncovered(*unit, entry);
        return;
    }
    std::lock_guard lock{wiring_mutex_};
    if (entry.listeners.empty()) return;
    std::string payload = codec_.encode(event);
    if (written_.outbox != this) written_.rows.clear(); // left by a unit that never ended here
    written_.outbox = this;
    if constexpr (claims_on_append<Store>) {
        if (born_claimed_.load(std::memory_order_acquire)) {
            auto until = std::chrono::system_clock::now() + options_.lease;
            for (const auto* listener : entry.listeners) {
                auto id = store_.append_claimed(outbox_message{listener->event_type, listener->name, env, payload},
                                                options_.relay_name, until);
                auto& fresh = written_.rows.emplace_back();
                fresh.row.id = id;
                fresh.row.event_type = listener->event_type;
                fresh.row.listener = listener->name;
                fresh.row.event = env.id;
                fresh.row.causation = env.causation_id;
                fresh.row.key = env.key.view();
                fresh.row.time = env.time;
                fresh.row.payload = payload;
                fresh.until = until;
            }
            return;
        }
    }
    for (const auto* listener : entry.listeners)
        store_.append(outbox_message{listener->event_type, listener->name, env, payload});
}

template <outbox_store Store, class Codec>
void outbox<Store, Codec>::unit_ended(completion outcome) {
    written_.outbox = nullptr;
    auto rows = std::move(written_.rows);
    written_.rows.clear();
    if (outcome != completion::committed) return; // the rows were rolled back with the unit
    std::lock_guard lock{relay_mutex_};
    // Not relaying (stopped, or not started again yet): the rows stay claimed in the store
    // until the next start() takes them back, or their lease runs out.
    if (!relaying_ || stopping_) return;
    fresh_.insert(fresh_.end(), std::make_move_iterator(rows.begin()), std::make_move_iterator(rows.end()));
    schedule_locked();
}

} // namespace choreo::durable
