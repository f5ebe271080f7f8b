#pragma once
/// @file
/// @brief The saga runtime: one per bus, shared by that process's participants.

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include <choreo/core/bus.hpp>
#include <choreo/core/causation.hpp>
#include <choreo/core/errors.hpp>
#include <choreo/core/listener_options.hpp>
#include <choreo/core/observe.hpp>
#include <choreo/saga/detail/admission.hpp>
#include <choreo/saga/detail/marker_waiters.hpp>
#include <choreo/saga/detail/store_ref.hpp>
#include <choreo/saga/errors.hpp>
#include <choreo/saga/events.hpp>
#include <choreo/saga/faults.hpp>
#include <choreo/saga/observe.hpp>
#include <choreo/saga/scheduler.hpp>
#include <choreo/saga/status.hpp>
#include <choreo/saga/store.hpp>

namespace choreo::saga {

/// @brief Hands a delivery to a test network instead of running it (see testing.hpp).
using delivery_hook = std::function<void(std::function<void()>)>;

/// @brief Settings of a saga runtime.
struct runtime_options {
    /// Deadline of a saga after its start; past it a running saga is rolled back. Zero: none.
    std::chrono::milliseconds timeout{std::chrono::seconds{30}};
    /// How long a step that finds an aggregate held by another saga waits for it, in the
    /// aggregate's queue (first come, first served; it is woken when the marker is handed to
    /// it, not by polling). Past it the step is refused and its saga rolled back.
    std::chrono::milliseconds marker_wait{std::chrono::seconds{5}};
    /// How a failing compensation is retried; past the last retry the saga stays
    /// rolling_back and compensation_exhausted is reported.
    retry_policy compensation{.immediate_retries = 0,
                              .delayed_retries = 10,
                              .initial_delay = std::chrono::milliseconds{50},
                              .backoff_multiplier = 2.0,
                              .max_delay = std::chrono::seconds{5},
                              .is_retryable = {}};
    /// Back-pressure: the most sagas this runtime may have started and not yet heard end. A
    /// start past it throws saga_overloaded_error before anything is created, rather than
    /// starting a saga that would wait, time out and be compensated. A saga whose end is
    /// never heard counts until its deadline. Zero: no limit.
    std::size_t max_running = 0;
    /// How long an in-progress marker lasts if its saga never ends (a crashed process).
    std::chrono::milliseconds marker_ttl{std::chrono::minutes{1}};
    /// Where participants' steps run; the bus's pool by default.
    std::optional<boost::asio::any_io_executor> executor{};
    /// Clock and timers; by default an asio_scheduler on the bus's pool. Must outlive the runtime.
    saga::scheduler* clock = nullptr;
    /// Checked before every step and compensation when set (tests).
    fault_injector* faults = nullptr;
    /// When set, participants hand each delivery to it instead of running it (tests).
    delivery_hook deliver{};
    /// Receives saga incidents; by default one line each on stderr.
    saga_incident_handler on_incident{};
    /// Receives each step and each compensation once it committed or failed; none by default.
    saga_tracer tracer{};
};

class participant;

namespace detail {

// Everything the runtime does, shared with participants and timers so that a timer
// firing late finds it gone rather than dangling.
class runtime_core : public std::enable_shared_from_this<runtime_core> {
public:
    runtime_core(choreo::bus& events, std::unique_ptr<store_ref> store, runtime_options options)
        : bus_(events), store_(std::move(store)), options_(std::move(options)), admission_(options_.max_running) {
        if (!options_.clock) {
            own_clock_ = std::make_unique<asio_scheduler>(events.executor());
            options_.clock = own_clock_.get();
        }
        if (!options_.on_incident) options_.on_incident = print_saga_incident;
    }

    // Stops the runtime's own timers: none may outlive the bus whose pool runs them.
    void close() {
        if (own_clock_) own_clock_->stop();
    }

    choreo::bus& events() noexcept { return bus_; }
    store_ref& store() noexcept { return *store_; }
    scheduler& clock() noexcept { return *options_.clock; }
    const runtime_options& options() const noexcept { return options_; }

    // A failing incident handler must neither turn a report into a lost step nor lose the
    // incident: it is printed instead.
    void report(saga_incident_kind kind, std::string_view key, std::string_view step,
                std::string_view message) noexcept {
        saga_incident incident{kind, key, step, message};
        try {
            options_.on_incident(incident);
        } catch (...) {
            try {
                fmt::print(stderr, "choreo saga: the incident handler threw ({}); the incident it was given:\n",
                           describe(std::current_exception()));
                print_saga_incident(incident);
            } catch (...) {}
        }
    }

    void trace(std::string_view key, std::string_view step, saga_work work, std::string_view error,
               std::chrono::steady_clock::time_point start) noexcept {
        if (!options_.tracer) return;
        try {
            options_.tracer(saga_trace{key, step, work, error.empty(), error, std::chrono::steady_clock::now() - start,
                                       std::this_thread::get_id()});
        } catch (...) {
            std::fputs("choreo saga: the tracer threw; the trace was dropped\n", stderr);
        }
    }

    void register_participant(const std::string& name) {
        std::lock_guard lock{mutex_};
        for (auto& n : participants_)
            if (n == name)
                throw usage_error(fmt::format("a participant named '{}' exists already on this runtime", name));
        participants_.push_back(name);
    }
    void unregister_participant(const std::string& name) {
        std::lock_guard lock{mutex_};
        std::erase(participants_, name);
        std::erase_if(steps_, [&](const std::string& n) { return n.starts_with(name + "/"); });
    }

    void register_step(const std::string& name) {
        std::lock_guard lock{mutex_};
        for (auto& n : steps_)
            if (n == name) throw usage_error(fmt::format("a saga step named '{}' is registered already", name));
        steps_.push_back(name);
    }
    std::vector<std::string> steps() const {
        std::lock_guard lock{mutex_};
        return steps_;
    }

    // Publishes what a transition calls for: the rollback event when this call rolled the
    // saga back, the end event when this call ended it.
    void announce(std::string_view key, const transition& t, std::string_view reason, std::string_view step) {
        if (t.changed && t.status != saga_status::completed)
            bus_.publish(saga_rolled_back{std::string{key}, std::string{reason}, std::string{step}, t.steps},
                         correlation_key{key});
        if (t.ended_now) bus_.publish(saga_ended{std::string{key}, t.status}, correlation_key{key});
    }

    void fail(std::string_view key, std::string_view reason, std::string_view step) {
        auto t = store_->roll_back(key, reason, step);
        if (!t.found) {
            report(saga_incident_kind::unknown_saga, key, step, "a step failed for a saga the store does not know");
            return;
        }
        announce(key, t, reason, step);
    }

    // The steps of this process waiting for markers, and what wakes them.
    marker_waiters& waiters() noexcept { return waiters_; }
    // Back-pressure: the sagas this runtime started and has not heard end.
    detail::admission& admission() noexcept { return admission_; }

    void watch(std::string key, std::chrono::milliseconds timeout) {
        clock().after(
            timeout,
            [weak = weak_from_this(), key = std::move(key), timeout] {
                auto self = weak.lock();
                if (!self) return;
                self->expire(key, timeout);
                self->admission_.leave(key, false);
            },
            task_kind::watchdog);
    }

    void expire(std::string_view key, std::chrono::milliseconds timeout) {
        auto reason = fmt::format("timed out after {} ms", timeout.count());
        auto t = store_->expire(key, clock().now(), reason);
        if (!t.changed) return;
        report(saga_incident_kind::timed_out, key, {}, reason);
        announce(key, t, reason, {});
    }

    std::size_t announce_stalled(std::chrono::milliseconds grace) {
        std::size_t n = 0;
        auto before = clock().now() - grace;
        for (auto& key : store_->stalled(before)) {
            auto record = store_->get(key);
            if (!record || record->status != saga_status::rolling_back) continue;
            bus_.publish(saga_rolled_back{key, record->reason, record->failed_step, record->step_names()},
                         correlation_key{key});
            ++n;
        }
        return n;
    }

    std::size_t expire_overdue() {
        std::size_t n = 0;
        for (auto& key : store_->overdue(clock().now())) {
            auto t = store_->expire(key, clock().now(), "timed out (found overdue)");
            if (!t.changed) continue;
            ++n;
            report(saga_incident_kind::timed_out, key, {}, "found overdue");
            announce(key, t, "timed out (found overdue)", {});
        }
        return n;
    }

private:
    choreo::bus& bus_;
    std::unique_ptr<store_ref> store_;
    std::unique_ptr<asio_scheduler> own_clock_;
    runtime_options options_;
    mutable std::mutex mutex_;
    std::vector<std::string> steps_;
    std::vector<std::string> participants_;
    marker_waiters waiters_;
    detail::admission admission_;
};

} // namespace detail

/// @brief The saga runtime of one bus: the stores, the clock, timeouts and reporting
/// that the participants of a process share. Thread-safe.
///
/// Declare it after the bus and stores and before the participants; destroy
/// participants first (reverse order does that) after drain().
class runtime {
public:
    /// @brief A runtime whose rollback state and markers live in one store (memory_store, for one).
    template <class Store>
    requires rollback_store<Store> && marker_store<Store> runtime(choreo::bus& events, Store& store,
                                                                  runtime_options options = {})
        : runtime(events, store, store, std::move(options)) {}

    /// @brief A runtime with separate rollback-state and marker stores.
    template <rollback_store States, marker_store Markers>
    runtime(choreo::bus& events, States& states, Markers& markers, runtime_options options = {})
        : core_(std::make_shared<detail::runtime_core>(
              events, std::make_unique<detail::store_adapter<States, Markers>>(states, markers), std::move(options))) {}

    /// @brief Cancels its pending timers (retries and timeouts) and waits for running ones.
    ~runtime() { core_->close(); }
    runtime(const runtime&) = delete;
    runtime& operator=(const runtime&) = delete;

    /// @brief The saga's record, or nothing if the store does not know it.
    [[nodiscard]] std::optional<saga_record> state(std::string_view key) const { return core_->store().get(key); }
    /// @brief As state(key.view()).
    [[nodiscard]] std::optional<saga_record> state(const correlation_key& key) const { return state(key.view()); }
    /// @brief Every registered step, "participant/step", in registration order: run a saga
    /// once per entry with a fault injected there to test every compensation path.
    [[nodiscard]] std::vector<std::string> steps() const { return core_->steps(); }
    /// @brief The saga holding an in-progress marker on `aggregate`, if any.
    [[nodiscard]] std::optional<std::string> holder(std::string_view aggregate) const {
        return core_->store().holder(aggregate, core_->clock().now());
    }
    /// @brief Rolls back every running saga past its deadline (for a process that restarts:
    /// timers of the previous run are gone). Returns how many it rolled back.
    std::size_t expire_overdue() { return core_->expire_overdue(); }
    /// @brief Announces again the rollback of every saga still rolling back `grace` after its
    /// deadline. A rollback announced by a process that died before its broadcast left, or
    /// heard by a participant whose process died before compensating, is otherwise never
    /// finished; participants ignore a rollback they have handled. Run it now and then
    /// (every few seconds) in one process or all. Returns how many it announced.
    std::size_t announce_stalled(std::chrono::milliseconds grace) { return core_->announce_stalled(grace); }
    /// @brief Waits until the bus and the scheduled retries are idle (timeouts excluded).
    void drain() {
        for (;;) {
            core_->events().drain();
            if (core_->clock().idle()) {
                core_->events().drain();
                if (core_->clock().idle()) return;
            }
            core_->clock().wait_idle();
        }
    }
    /// @brief The bus.
    [[nodiscard]] choreo::bus& events() noexcept { return core_->events(); }
    /// @brief The clock and timers.
    [[nodiscard]] saga::scheduler& clock() noexcept { return core_->clock(); }
    /// @brief The settings.
    [[nodiscard]] const runtime_options& options() const noexcept { return core_->options(); }

private:
    friend class participant;
    std::shared_ptr<detail::runtime_core> core_;
};

} // namespace choreo::saga
