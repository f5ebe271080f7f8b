#pragma once
// Definitions of bus: construction, registry, lifecycle and publication (Boost.Beast's
// layout: declarations in x.hpp, definitions in impl/x.hpp). Included by bus.hpp.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <optional>
#include <thread>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <fmt/format.h>

#include <choreo/core/bus.hpp>
#include <choreo/core/detail/async_batch.hpp>
#include <choreo/core/detail/reclaim.hpp>

namespace choreo {

namespace detail {

inline std::string chain_of(const event_buffer& events, std::int32_t last, std::string_view next) {
    std::vector<std::string_view> names{next};
    for (std::int32_t i = last; i >= 0 && names.size() < 9; i = events[static_cast<std::size_t>(i)].parent)
        names.push_back(events[static_cast<std::size_t>(i)].env.type_name);
    std::reverse(names.begin(), names.end());
    return fmt::format("{}{}", last >= 0 && names.size() == 9 ? "... -> " : "", fmt::join(names, " -> "));
}

inline void print_incident(const incident& i) {
    if (i.kind == incident_kind::rollback_failed) {
        fmt::print(stderr, "choreo: rollback failed: {}\n", i.message);
        return;
    }
    std::string event;
    if (i.event_envelope)
        event = fmt::format(" (event {}{}{})", i.event_envelope->id, i.event_envelope->key.empty() ? "" : ", key ",
                            i.event_envelope->key.view());
    fmt::print(stderr, "choreo: {}: listener '{}' for {}{} ({}), attempt {}: {}\n", to_string(i.kind), i.listener,
               i.event_type, event, to_string(i.listener_phase), i.attempt, i.message);
}

// Hands an incident to the error handler. One that throws would lose it, so the incident
// itself is printed then, with what the handler threw.
inline void hand_to_error_handler(const incident_handler& handler, const incident& i) noexcept {
    std::string why = "an exception not derived from std::exception";
    try {
        handler(i);
        return;
    } catch (const std::exception& e) {
        try {
            why = e.what();
        } catch (...) {}
    } catch (...) {}
    try {
        fmt::print(stderr, "choreo: the error handler threw ({}); the incident it was given:\n", why);
        print_incident(i);
    } catch (...) {
        std::fputs("choreo: the error handler threw, and printing its incident failed too\n", stderr);
    }
}

} // namespace detail

// Counts a commit or job as in flight and marks the thread as working for the bus, so
// that work already admitted may finish (and publish) while the bus shuts down.
class bus::work_scope {
public:
    explicit work_scope(bus& b) noexcept : bus_(b), saved_(detail::working_for), admitted_(b.begin_work()) {
        if (admitted_) detail::working_for = &b;
    }
    ~work_scope() {
        if (admitted_) {
            detail::working_for = saved_;
            bus_.end_work();
        }
    }
    work_scope(const work_scope&) = delete;
    work_scope& operator=(const work_scope&) = delete;
    [[nodiscard]] bool admitted() const noexcept { return admitted_; }

private:
    bus& bus_;
    const void* saved_;
    bool admitted_;
};

// ---------------------------------------------------------------------------------------
// bus: construction, registry, lifecycle

inline bus::bus(bus_options options)
    : options_(std::move(options)),
      pool_(options_.threads != 0 ? options_.threads : std::max(2u, std::thread::hardware_concurrency())) {
    if (!options_.on_incident) options_.on_incident = &detail::print_incident;
    if (options_.key_lanes == 0) options_.key_lanes = 1;
}

inline bus::~bus() { shutdown(); }

inline detail::channel* bus::find_channel(std::size_t index) const noexcept {
    auto chunk_index = index / chunk_size;
    if (chunk_index >= chunk_count) return nullptr;
    chunk* c = table_[chunk_index].load(std::memory_order_acquire);
    return c ? (*c)[index % chunk_size].load(std::memory_order_acquire) : nullptr;
}

inline std::shared_ptr<detail::channel> bus::channel_for(std::size_t index, std::string_view type_name) {
    std::lock_guard lock{registry_mutex_};
    auto chunk_index = index / chunk_size;
    if (chunk_index >= chunk_count)
        throw usage_error(fmt::format("choreo supports {} event types per process; {} is one too many",
                                      chunk_size * chunk_count, type_name));
    chunk* c = table_[chunk_index].load(std::memory_order_relaxed);
    if (!c) {
        chunks_.push_back(std::make_unique<chunk>());
        c = chunks_.back().get();
        table_[chunk_index].store(c, std::memory_order_release);
    }
    if (auto* existing = (*c)[index % chunk_size].load(std::memory_order_relaxed)) {
        for (auto& owned : channels_)
            if (owned.get() == existing) return owned;
    }
    auto created = std::make_shared<detail::channel>(type_name);
    channels_.push_back(created);
    (*c)[index % chunk_size].store(created.get(), std::memory_order_release);
    return created;
}

inline detail::lane* bus::lane_for(const listener_options& options) {
    auto executor = options.executor.value_or(boost::asio::any_io_executor{pool_.get_executor()});
    std::lock_guard lock{lanes_mutex_};
    auto found = std::find_if(lanes_.begin(), lanes_.end(), [&](auto& l) { return l->executor == executor; });
    detail::lane* target = found != lanes_.end() ? found->get() : nullptr;
    if (!target) {
        lanes_.push_back(std::make_unique<detail::lane>());
        target = lanes_.back().get();
        target->executor = executor;
    }
    if (options.order_by == ordering::per_key && target->keyed.empty()) {
        for (std::size_t i = 0; i < options_.key_lanes; ++i) {
            auto strand = std::make_unique<detail::lane>();
            strand->ordered = true;
            // On the bus's own pool, a strand of the pool's concrete executor, posted to
            // without type erasure: two allocations less per job.
            if (executor == boost::asio::any_io_executor{pool_.get_executor()}) {
                strand->pool_strand.emplace(boost::asio::make_strand(pool_.get_executor()));
                strand->executor = *strand->pool_strand;
            } else {
                strand->executor = boost::asio::make_strand(executor);
            }
            target->keyed.push_back(std::move(strand));
        }
    }
    return target;
}

inline void bus::validate(const listener_options& o, std::string_view type_name) const {
    auto fail = [&](std::string_view why) {
        throw usage_error(fmt::format("listener '{}' for {}: {}", o.name, type_name, why));
    };
    bool async = o.mode == delivery::asynchronous;
    if (o.when == phase::before_commit && async)
        fail("before_commit listeners run inside the commit, so they cannot be asynchronous");
    if (!async && o.order_by != ordering::none) fail("per-key ordering applies to asynchronous listeners only");
    if (!async && o.executor) fail("an executor applies to asynchronous listeners only");
    bool caller_sees_errors = !async && (o.when == phase::immediate || o.when == phase::before_commit);
    if (caller_sees_errors && (o.retry.immediate_retries != 0 || o.retry.delayed_retries != 0))
        fail("exceptions in synchronous immediate and before_commit listeners reach the caller; they are not retried");
    if (!async && o.retry.delayed_retries != 0)
        fail("delayed retries need an asynchronous listener (a synchronous one would block the committing thread)");
    if (o.when == phase::immediate && o.without_transaction != no_transaction_policy::error)
        fail("a no-transaction policy applies to transactional phases only");
    if (!o.retry.invalid_reason().empty()) fail(o.retry.invalid_reason());
}

template <event E, class F>
connection bus::subscribe(F&& listener, listener_options options) {
    using fn_type = std::decay_t<F>;
    static_assert(detail::listener_for<fn_type, E>,
                  "a listener takes (const E&), (const E&, const envelope&) or (const E&, const delivery_info&)");
    constexpr std::string_view type_name = event_type_name<E>();
    if (is_closed()) throw_closed();
    if (options.name.empty())
        options.name = fmt::format("{}#{}", type_name, next_listener_.fetch_add(1, std::memory_order_relaxed));
    validate(options, type_name);
    if (options.when == phase::immediate && options.mode == delivery::asynchronous && !std::is_copy_constructible_v<E>)
        throw usage_error(
            fmt::format("listener '{}': an asynchronous immediate listener needs a copyable event, and {} "
                        "is not",
                        options.name, type_name));
    auto record = std::make_shared<detail::typed_listener<E, fn_type>>(std::forward<F>(listener));
    record->name = options.name;
    record->event_type = type_name;
    record->invoke = &detail::typed_listener<E, fn_type>::call;
    if (options.mode == delivery::asynchronous) record->target = lane_for(options);
    record->options = std::move(options);
    auto channel = channel_for(detail::event_index<E>(), type_name);
    auto link = channel->add(record);
    return connection{std::move(link), channel, record};
}

inline std::vector<registration> bus::wiring() const {
    std::vector<registration> out;
    std::lock_guard lock{registry_mutex_};
    detail::read_section section;
    for (auto& channel : channels_) {
        const detail::snapshot* snap = channel->current();
        if (!snap) continue;
        for (const auto& d : snap->entries) {
            if (!d.record->alive.load(std::memory_order_acquire)) continue;
            const auto& o = d.record->options;
            out.push_back({std::string{channel->type_name()}, d.record->name, o.when, o.order, o.mode, o.order_by,
                           o.without_transaction});
        }
    }
    return out;
}

inline bool bus::begin_work() noexcept {
    in_flight_.fetch_add(1, std::memory_order_seq_cst);
    if (closed_.load(std::memory_order_seq_cst) && detail::working_for != this) {
        end_work();
        return false;
    }
    return true;
}

inline void bus::end_work() noexcept {
    if (in_flight_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard lock{drain_mutex_};
        drained_.notify_all();
    }
}

inline void bus::throw_closed() const {
    throw bus_closed_error("the bus is shut down: nothing more can be published, committed or subscribed");
}

inline void bus::drain() {
    if (detail::working_for == this)
        throw usage_error("drain() was called from a listener or commit of the same bus; it would wait for itself");
    std::unique_lock lock{drain_mutex_};
    drained_.wait(lock, [this] { return in_flight_.load(std::memory_order_acquire) == 0; });
}

inline void bus::shutdown() {
    if (detail::working_for == this)
        throw usage_error("shutdown() was called from a listener or commit of the same bus; it would wait for itself");
    std::lock_guard lock{shutdown_mutex_};
    closed_.store(true, std::memory_order_seq_cst);
    drain();
    if (!stopped_) {
        pool_.join();
        stopped_ = true;
    }
}

// ---------------------------------------------------------------------------------------
// bus: publication

inline unit_of_work* bus::current_unit() const noexcept {
    for (auto* unit = detail::current_unit; unit; unit = unit->previous_)
        if (unit->bus_ == this) return unit;
    return nullptr;
}

template <class E>
void bus::publish(E&& event) {
    publish_impl(std::forward<E>(event), nullptr, nullptr);
}

template <class E>
void bus::publish(E&& event, const correlation_key& key) {
    publish_impl(std::forward<E>(event), &key, nullptr);
}

template <class E>
void bus::publish_impl(E&& event, const correlation_key* key, unit_of_work* target) {
    using T = std::remove_cvref_t<E>;
    static_assert(choreo::event<T>, "an event is a movable, non-const object type");
    if (closed_.load(std::memory_order_relaxed) && detail::working_for != this) throw_closed();
    if (target) target->require_open("publish into");

    detail::read_section section;
    const detail::channel* channel = find_channel(detail::event_index<T>());
    const detail::snapshot* snap = channel ? channel->current() : nullptr;
    if (!snap) return;
    // Only transactional listeners care about the unit of work: immediate-only events skip the lookup.
    unit_of_work* unit = target ? target : snap->transactional ? current_unit() : nullptr;
    if (!unit && snap->requires_transaction)
        throw no_transaction_error(
            fmt::format("{} was published with no unit of work, and listener '{}' ({}) requires one: publish inside "
                        "bus.begin(...), or subscribe it with a no_transaction_policy of run_now or skip_with_warning",
                        event_type_name<T>(), snap->requires_transaction->name,
                        to_string(snap->requires_transaction->options.when)));

    detail::frame f{event_type_name<T>(), key, ids_};
    if (auto immediate = snap->in(phase::immediate); !immediate.empty()) {
        detail::frame_scope scope{f};
        dispatch_immediate(*snap, static_cast<const T&>(event), f);
    }
    if (!snap->transactional) return;
    if (unit)
        buffer_into(*unit, std::forward<E>(event), f, *snap);
    else
        publish_without_unit(std::forward<E>(event), f, *snap);
}

template <class T>
void bus::dispatch_immediate(const detail::snapshot& snap, const T& event, const detail::frame& f) {
    if (!options_.tracer && !snap.async_immediate) {
        // The common case, decided once per event rather than per listener.
        const delivery_info info{f, phase::immediate, completion::none, 1};
        for (const auto& d : snap.in(phase::immediate))
            if (d.record->alive.load(std::memory_order_acquire)) d.invoke(*d.record, &event, info);
        return;
    }
    for (const auto& d : snap.in(phase::immediate)) {
        auto& record = *d.record;
        if (!record.alive.load(std::memory_order_acquire)) continue;
        if (record.is_async()) {
            if constexpr (std::is_copy_constructible_v<T>) post_single(event, f, snap.owner_of(d));
            continue;
        }
        if (!options_.tracer) {
            d.invoke(record, &event, delivery_info{f, phase::immediate, completion::none, 1});
            continue;
        }
        invoke(d, &event, f, phase::immediate, completion::none, 1);
    }
}

template <class E>
void bus::buffer_into(unit_of_work& unit, E&& event, const detail::frame& f, const detail::snapshot& snap) {
    using T = std::remove_cvref_t<E>;
    if (unit.kind_ == unit_of_work::kind::implicit && snap.requires_transaction)
        throw no_transaction_error(fmt::format(
            "{} was published by a listener running outside any unit of work, and listener '{}' requires one",
            event_type_name<T>(), snap.requires_transaction->name));
    auto& events = unit.events();
    if (unit.publish_depth_ > options_.max_commit_depth)
        throw commit_error(fmt::format("before_commit listeners published events {} hops deep (limit {}), "
                                       "probably a cycle: {}",
                                       unit.publish_depth_, options_.max_commit_depth,
                                       detail::chain_of(events, unit.publish_parent_, event_type_name<T>())));
    if (events.size() >= options_.max_commit_events)
        throw commit_error(fmt::format("a unit of work may hold {} events; publishing {} exceeds it",
                                       options_.max_commit_events, event_type_name<T>()));
    auto& node = events.push(std::forward<E>(event), unit.publish_depth_, unit.publish_parent_);
    node.env = f.get();
}

template <class E>
void bus::publish_without_unit(E&& event, const detail::frame& f, const detail::snapshot& snap) {
    // run_now listeners see the event as if committed in a unit of work of its own;
    // skip_with_warning listeners are reported when their phase comes.
    unit_of_work implicit{*this, detail::resource_ref{}, unit_of_work::kind::implicit};
    buffer_into(implicit, std::forward<E>(event), f, snap);
    implicit.commit();
}

template <class T>
void bus::post_single(const T& event, const detail::frame& f, const std::shared_ptr<detail::listener_record>& record) {
    work_scope work{*this};
    if (!work.admitted()) throw_closed();
    auto buffer = acquire_buffer();
    auto& node = buffer->push(event, 0, -1);
    node.env = f.get();
    auto* target =
        record->options.order_by == ordering::per_key ? record->target->for_key(node.env.key) : record->target;
    auto* batch = acquire_batch();
    batch->events = std::move(buffer);
    batch->add(target, {0, phase::immediate, completion::none, 1, record});
    post_batch(batch);
}

} // namespace choreo
