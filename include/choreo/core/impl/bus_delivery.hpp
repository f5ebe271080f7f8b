#pragma once
// Definitions of bus: delivery to listeners (synchronous, after commit, asynchronous jobs).
// Included by bus.hpp.

#include <choreo/core/bus.hpp>

namespace choreo {

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
inline std::exception_ptr bus::attempt_delivery(detail::listener_record& record, const void* event, const envelope& env,
                                                phase when, completion outcome, unsigned attempt) noexcept {
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

inline void bus::deliver_sync_after(detail::listener_record& record, const void* event, const envelope& env, phase when,
                                    completion outcome) noexcept {
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

} // namespace choreo
