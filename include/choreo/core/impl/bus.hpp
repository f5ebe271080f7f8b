#pragma once
// Definitions of bus and unit_of_work (Boost.Beast's layout: declarations in x.hpp,
// definitions in impl/x.hpp). Included by bus.hpp; not meant to be included alone.

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
#include <choreo/core/detail/reclaim.hpp>

namespace choreo {

namespace detail {

struct async_item {
    std::uint32_t event;
    phase when;
    completion outcome;
    unsigned attempt;
    std::shared_ptr<listener_record> record;
};

struct async_group {
    lane* target = nullptr;
    std::vector<async_item> items;
};

// The asynchronous deliveries of one commit: the commit's events (moved out of the unit
// of work, so nothing is copied) and one group of items per executor or strand. Each
// group is one job. Batches and their vectors are pooled by the bus and reused.
struct async_batch {
    std::unique_ptr<event_buffer> events;
    std::vector<async_group> groups;
    std::size_t used = 0;
    std::atomic<std::size_t> pending{0};

    void add(lane* target, async_item item) {
        for (std::size_t g = 0; g < used; ++g) {
            if (groups[g].target == target) {
                groups[g].items.push_back(std::move(item));
                return;
            }
        }
        if (used == groups.size()) groups.emplace_back();
        auto& group = groups[used++];
        group.target = target;
        group.items.push_back(std::move(item));
    }

    void reset() noexcept {
        for (std::size_t g = 0; g < used; ++g) groups[g].items.clear();
        used = 0;
    }
};

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
        } catch (...) {
        }
    } catch (...) {
    }
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
        throw usage_error(fmt::format("listener '{}': an asynchronous immediate listener needs a copyable event, and {} "
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
        throw no_transaction_error(fmt::format(
            "{} was published with no unit of work, and listener '{}' ({}) requires one: publish inside "
            "bus.begin(...), or subscribe it with a no_transaction_policy of run_now or skip_with_warning",
            event_type_name<T>(), snap->requires_transaction->name, to_string(snap->requires_transaction->options.when)));

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
    auto* target = record->options.order_by == ordering::per_key ? record->target->for_key(node.env.key) : record->target;
    auto* batch = acquire_batch();
    batch->events = std::move(buffer);
    batch->add(target, {0, phase::immediate, completion::none, 1, record});
    post_batch(batch);
}

// ---------------------------------------------------------------------------------------
// bus: delivery

inline void bus::trace(const detail::listener_record& record, const envelope& env, phase when, completion outcome,
                       std::chrono::steady_clock::time_point start, dispatch_outcome result, unsigned attempt,
                       std::exception_ptr error) noexcept {
    try {
        options_.tracer(dispatch_trace{record.event_type, record.name, when, record.options.mode, outcome,
                                       std::this_thread::get_id(), std::chrono::steady_clock::now() - start, result,
                                       attempt, env, std::move(error)});
    } catch (...) {
        std::fputs("choreo: the tracer threw; the trace was dropped\n", stderr);
    }
}

inline void bus::invoke(const detail::delegate& d, const void* event, const detail::frame& f, phase when,
                        completion outcome, unsigned attempt) {
    delivery_info info{f, when, outcome, attempt};
    if (!options_.tracer) {
        d.invoke(*d.record, event, info);
        return;
    }
    auto start = std::chrono::steady_clock::now();
    detail::handled_failure_scope handled;
    try {
        d.invoke(*d.record, event, info);
    } catch (...) {
        trace(*d.record, f.get(), when, outcome, start, dispatch_outcome::failed, attempt, std::current_exception());
        throw;
    }
    if (handled.error())
        trace(*d.record, f.get(), when, outcome, start, dispatch_outcome::failed, attempt, handled.error());
    else
        trace(*d.record, f.get(), when, outcome, start, dispatch_outcome::succeeded, attempt, nullptr);
}

inline void bus::report(incident_kind kind, const detail::listener_record* record, const envelope* env, phase when,
                        std::exception_ptr error, unsigned attempt, std::string_view message) noexcept {
    detail::hand_to_error_handler(options_.on_incident,
                                  incident{kind, record ? record->event_type : std::string_view{},
                                           record ? std::string_view{record->name} : std::string_view{}, when, env,
                                           std::move(error), attempt, message});
}

// One attempt of an after_* or asynchronous delivery. The listener runs inside a unit of
// work of its own (no resource), so what it publishes is committed when it returns, and
// rolled back when it throws: such events are never lost and never half-delivered.
inline std::exception_ptr bus::attempt_delivery(detail::listener_record& record, const void* event,
                                                const envelope& env, phase when, completion outcome,
                                                unsigned attempt) noexcept {
    detail::frame f{env};
    detail::frame_scope scope{f};
    try {
        unit_of_work follow_up{*this, detail::resource_ref{}, unit_of_work::kind::follow_up};
        invoke(detail::delegate{record.invoke, &record}, event, f, when, outcome, attempt);
        follow_up.commit();
        return nullptr;
    } catch (...) {
        return std::current_exception();
    }
}

inline void bus::deliver_sync_after(detail::listener_record& record, const void* event, const envelope& env,
                                    phase when, completion outcome) noexcept {
    const auto& policy = record.options.retry;
    for (unsigned attempt = 1;; ++attempt) {
        auto error = attempt_delivery(record, event, env, when, outcome, attempt);
        if (!error) return;
        bool again = attempt <= policy.immediate_retries && policy.retryable(error);
        auto message = describe(error);
        report(again ? incident_kind::listener_failed : incident_kind::retries_exhausted, &record, &env, when, error,
               attempt, message);
        if (!again) return;
    }
}

inline bool bus::skip_outside_transaction(const unit_of_work& unit, const detail::listener_record& record,
                                          const envelope& env, phase when) noexcept {
    if (unit.kind_ != unit_of_work::kind::implicit) return false;
    auto policy = record.options.without_transaction;
    if (policy == no_transaction_policy::run_now) return false;
    report(incident_kind::listener_skipped, &record, &env, when, nullptr, 0,
           "published with no unit of work, and the listener's no_transaction_policy does not run it");
    if (options_.tracer)
        trace(record, env, when, completion::none, std::chrono::steady_clock::now(), dispatch_outcome::skipped, 0,
              nullptr);
    return true;
}

inline void bus::run_before_commit(unit_of_work& unit, std::size_t index) {
    auto& node = unit.events()[index];
    const detail::channel* channel = find_channel(node.index);
    if (!channel) return;
    detail::read_section section;
    const detail::snapshot* snap = channel->current();
    if (!snap) return;
    detail::frame f{node.env};
    detail::frame_scope scope{f};
    unit.publish_depth_ = node.depth + 1;
    unit.publish_parent_ = static_cast<std::int32_t>(index);
    for (const auto& d : snap->in(phase::before_commit)) {
        if (!d.record->alive.load(std::memory_order_acquire)) continue;
        if (skip_outside_transaction(unit, *d.record, node.env, phase::before_commit)) continue;
        invoke(d, node.object, f, phase::before_commit, completion::none, 1);
    }
}

inline void bus::run_after(unit_of_work& unit, completion outcome) {
    if (!unit.events_ || unit.events_->empty()) return;
    auto& events = *unit.events_;
    detail::async_batch* batch = nullptr;
    const phase phases[] = {outcome == completion::committed ? phase::after_commit : phase::after_rollback,
                            phase::after_completion};
    for (phase when : phases) {
        for (std::size_t i = 0; i < events.size(); ++i) {
            auto& node = events[i];
            const detail::channel* channel = find_channel(node.index);
            if (!channel) continue;
            detail::read_section section;
            const detail::snapshot* snap = channel->current();
            if (!snap) continue;
            for (const auto& d : snap->in(when)) {
                auto& record = *d.record;
                if (!record.alive.load(std::memory_order_acquire)) continue;
                if (skip_outside_transaction(unit, record, node.env, when)) continue;
                if (record.is_async()) {
                    if (!batch) batch = acquire_batch();
                    auto* target = record.options.order_by == ordering::per_key ? record.target->for_key(node.env.key)
                                                                                 : record.target;
                    batch->add(target, {static_cast<std::uint32_t>(i), when, outcome, 1, snap->owner_of(d)});
                } else {
                    deliver_sync_after(record, node.object, node.env, when, outcome);
                }
            }
        }
    }
    if (batch) {
        batch->events = std::move(unit.events_);
        post_batch(batch);
    }
}

// ---------------------------------------------------------------------------------------
// bus: asynchronous jobs

inline std::unique_ptr<detail::event_buffer> bus::acquire_buffer() {
    {
        std::lock_guard lock{pool_mutex_};
        if (!free_buffers_.empty()) {
            auto buffer = std::move(free_buffers_.back());
            free_buffers_.pop_back();
            return buffer;
        }
    }
    return std::make_unique<detail::event_buffer>();
}

inline void bus::release_buffer(std::unique_ptr<detail::event_buffer> buffer) noexcept {
    if (!buffer) return;
    buffer->clear();
    std::lock_guard lock{pool_mutex_};
    try {
        free_buffers_.push_back(std::move(buffer));
    } catch (...) {
        // Out of memory: the buffer is freed instead of pooled.
    }
}

inline detail::async_batch* bus::acquire_batch() {
    {
        std::lock_guard lock{pool_mutex_};
        if (!free_batches_.empty()) {
            auto* batch = free_batches_.back().release();
            free_batches_.pop_back();
            return batch;
        }
    }
    return new detail::async_batch;
}

inline void bus::release_batch(detail::async_batch* batch) noexcept {
    release_buffer(std::move(batch->events));
    batch->reset();
    std::lock_guard lock{pool_mutex_};
    try {
        free_batches_.emplace_back(batch);
    } catch (...) {
        delete batch;
    }
}

// The caller holds a work_scope, so a concurrent shutdown waits for these jobs.
inline void bus::post_batch(detail::async_batch* batch) {
    // Once the last job is posted the batch may finish and be reused at once: read
    // nothing of it after that post.
    const std::size_t groups = batch->used;
    batch->pending.store(groups, std::memory_order_relaxed);
    in_flight_.fetch_add(groups, std::memory_order_seq_cst);
    for (std::size_t g = 0; g < groups; ++g) {
        auto* target = batch->groups[g].target;
        auto job = [this, batch, g] { run_group(batch, g, 0, false); };
        if (target->pool_strand)
            boost::asio::post(*target->pool_strand, std::move(job));
        else
            boost::asio::post(target->executor, std::move(job));
    }
}

// `resumed`: the run a delayed retry's timer makes, at the item that is retried.
inline void bus::run_group(detail::async_batch* batch, std::size_t group, std::size_t from, bool resumed) noexcept {
    detail::lane* lane = batch->groups[group].target;
    if (lane->ordered && lane->held && !resumed) {
        // An earlier job of this key's lane waits for a delayed retry: this one waits
        // behind it, so the key's events keep their order.
        try {
            lane->parked.emplace_back([this, batch, group] { run_group(batch, group, 0, false); });
            return;
        } catch (...) {
            // Out of memory: delivered now, out of order, rather than not at all.
        }
    }
    const void* saved = detail::working_for;
    detail::working_for = this;
    auto& items = batch->groups[group].items;
    for (std::size_t i = from; i < items.size(); ++i) {
        if (!deliver_async(batch, group, i)) {
            detail::working_for = saved;
            if (lane->ordered) lane->held = true;
            return; // a delayed retry resumes the group at item i
        }
    }
    detail::working_for = saved;
    // The job that held the lane is done: the jobs behind it run now, in order, until one
    // of them waits for a retry in turn. They are taken before end_work(), after which
    // the bus may be gone unless jobs are still counted in flight (those behind are).
    std::vector<std::function<void()>> behind; // allocates nothing unless jobs were parked
    if (resumed && lane->ordered) {
        lane->held = false;
        behind.swap(lane->parked);
    }
    if (batch->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) release_batch(batch);
    end_work();
    for (std::size_t next = 0; next < behind.size(); ++next) {
        if (lane->held) {
            // Nothing was parked meanwhile (jobs posted since queue on the strand behind
            // this one): the rest go back, in order.
            behind.erase(behind.begin(), behind.begin() + static_cast<std::ptrdiff_t>(next));
            lane->parked.swap(behind);
            return;
        }
        behind[next]();
    }
}

inline bool bus::deliver_async(detail::async_batch* batch, std::size_t group, std::size_t index) noexcept {
    auto& item = batch->groups[group].items[index];
    auto& record = *item.record;
    auto& node = (*batch->events)[item.event];
    const auto& policy = record.options.retry;
    for (;;) {
        if (!record.alive.load(std::memory_order_acquire)) return true;
        auto error = attempt_delivery(record, node.object, node.env, item.when, item.outcome, item.attempt);
        if (!error) return true;
        bool retryable = policy.retryable(error);
        bool immediate = retryable && item.attempt <= policy.immediate_retries;
        bool delayed = retryable && !immediate && item.attempt <= policy.immediate_retries + policy.delayed_retries;
        auto message = describe(error);
        report(immediate || delayed ? incident_kind::listener_failed : incident_kind::retries_exhausted, &record,
               &node.env, item.when, error, item.attempt, message);
        if (immediate) {
            ++item.attempt;
            continue;
        }
        if (!delayed) return true;
        auto delay = policy.delay_before(item.attempt - 1 - policy.immediate_retries);
        ++item.attempt;
        try {
            auto timer = std::make_shared<boost::asio::steady_timer>(batch->groups[group].target->executor, delay);
            timer->async_wait([this, batch, group, index, timer](const boost::system::error_code&) {
                run_group(batch, group, index, true);
            });
            return false;
        } catch (...) {
            report(incident_kind::retries_exhausted, &record, &node.env, item.when, std::current_exception(),
                   item.attempt, "could not schedule a delayed retry");
            return true;
        }
    }
}

// ---------------------------------------------------------------------------------------
// unit_of_work

template <transactional_resource R>
unit_of_work bus::begin(R& resource) {
    if (is_closed() && detail::working_for != this) throw_closed();
    return unit_of_work{*this, detail::resource_ref::to(resource), unit_of_work::kind::explicit_unit};
}

inline unit_of_work bus::begin() {
    if (is_closed() && detail::working_for != this) throw_closed();
    return unit_of_work{*this, detail::resource_ref{}, unit_of_work::kind::explicit_unit};
}

inline unit_of_work::unit_of_work(choreo::bus& owner, detail::resource_ref resource, kind k)
    : bus_(&owner), resource_(resource), kind_(k), thread_(std::this_thread::get_id()), previous_(detail::current_unit) {
    resource_.begin();
    detail::current_unit = this;
}

inline unit_of_work::~unit_of_work() {
    if (state_ == unit_state::active) finish_rollback(completion::rolled_back);
    if (events_) bus_->release_buffer(std::move(events_));
}

template <class E>
void unit_of_work::publish(E&& event) {
    bus_->publish_impl(std::forward<E>(event), nullptr, this);
}

template <class E>
void unit_of_work::publish(E&& event, const correlation_key& key) {
    bus_->publish_impl(std::forward<E>(event), &key, this);
}

inline void unit_of_work::require_open(const char* action) const {
    if (state_ == unit_state::active || state_ == unit_state::committing) return;
    throw usage_error(fmt::format("cannot {} a unit of work that has already {}", action,
                                  state_ == unit_state::committed ? "committed" : "rolled back"));
}

inline detail::event_buffer& unit_of_work::events() {
    if (!events_) events_ = bus_->acquire_buffer();
    return *events_;
}

inline void unit_of_work::unlink() noexcept {
    if (thread_ != std::this_thread::get_id()) return;
    if (detail::current_unit == this) {
        detail::current_unit = previous_;
        return;
    }
    for (auto* unit = detail::current_unit; unit; unit = unit->previous_) {
        if (unit->previous_ == this) {
            unit->previous_ = previous_;
            return;
        }
    }
}

inline void unit_of_work::commit() {
    if (state_ != unit_state::active) {
        if (state_ == unit_state::committing)
            throw usage_error("commit() was called again while the unit of work is committing");
        require_open("commit");
    }
    // A unit with nothing to deliver (the common case for a listener's own unit) skips
    // the in-flight accounting: there is nothing for a shutdown to wait for.
    const bool has_events = events_ && !events_->empty();
    std::optional<bus::work_scope> work;
    if (has_events) work.emplace(*bus_);
    const bool admitted = has_events ? work->admitted() : !(bus_->is_closed() && detail::working_for != bus_);
    if (!admitted) {
        finish_rollback(completion::rolled_back);
        bus_->throw_closed();
    }
    state_ = unit_state::committing;
    try {
        // Restored on the way out, so a unit committed inside a before_commit listener
        // hands the role back to the outer one.
        struct committing_scope {
            unit_of_work* saved = detail::committing_unit;
            explicit committing_scope(unit_of_work* unit) noexcept { detail::committing_unit = unit; }
            ~committing_scope() { detail::committing_unit = saved; }
        };
        if (events_) {
            committing_scope scope{this};
            for (std::size_t i = 0; i < events_->size(); ++i) bus_->run_before_commit(*this, i);
        }
        publish_depth_ = 0;
        publish_parent_ = -1;
        resource_.commit();
    } catch (...) {
        finish_rollback(completion::rolled_back);
        throw;
    }
    state_ = unit_state::committed;
    unlink();
    if (!has_events) return;
    try {
        bus_->run_after(*this, completion::committed);
    } catch (...) {
        bus_->report(incident_kind::listener_failed, nullptr, nullptr, phase::after_commit, std::current_exception(), 0,
                     "after_commit delivery could not be scheduled");
    }
    if (events_) bus_->release_buffer(std::move(events_));
}

inline unit_of_work* unit_of_work::committing() noexcept { return detail::committing_unit; }

inline void unit_of_work::rollback() {
    if (state_ != unit_state::active) {
        if (state_ == unit_state::committing)
            throw usage_error("rollback() was called while the unit of work is committing; throw from the "
                              "before_commit listener instead");
        require_open("roll back");
    }
    finish_rollback(completion::rolled_back);
}

inline void unit_of_work::finish_rollback(completion why) noexcept {
    try {
        resource_.rollback();
    } catch (...) {
        auto error = std::current_exception();
        bus_->report(incident_kind::rollback_failed, nullptr, nullptr, phase::after_rollback, error, 0, describe(error));
    }
    state_ = unit_state::rolled_back;
    publish_depth_ = 0;
    publish_parent_ = -1;
    unlink();
    if (!events_ || events_->empty()) return;
    bus::work_scope work{*bus_};
    if (!work.admitted()) return; // shut down: the resource rolled back, listeners no longer run
    try {
        bus_->run_after(*this, why);
    } catch (...) {
        bus_->report(incident_kind::listener_failed, nullptr, nullptr, phase::after_rollback, std::current_exception(),
                     0, "after_rollback delivery could not be scheduled");
    }
    if (events_) bus_->release_buffer(std::move(events_));
}

} // namespace choreo
