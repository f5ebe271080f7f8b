#pragma once
/// @file
/// @brief The saga runtime: one per bus, shared by that process's participants.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include <choreo/core/bus.hpp>
#include <choreo/core/causation.hpp>
#include <choreo/core/errors.hpp>
#include <choreo/core/listener_options.hpp>
#include <choreo/core/observe.hpp>
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
        : bus_(events), store_(std::move(store)), options_(std::move(options)) {
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
            bus_.publish(saga_rolled_back{std::string{key}, std::string{reason}, std::string{step}},
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

    // Steps of this process waiting in a marker's queue. A wait ends once: when this process
    // hands the marker to the waiter (released_to), when it hears the holder's saga end
    // (holder_ended: the holder may be in another process), or at the wait's bound
    // (withdraw). A hand-over heard while its waiter is between two attempts is kept for
    // the next wait of that saga on that marker, so it is not lost.
    struct marker_wait {
        std::uint64_t id = 0;      // 0: handed over already, and resumed
        bool holder_ended = false; // its end was heard here: the hand-over is due from elsewhere
    };
    marker_wait wait_for_marker(std::string_view aggregate, std::string_view key, std::string_view holder,
                                std::function<void()> resume) {
        {
            std::lock_guard lock{mutex_};
            auto handed = std::find_if(handed_over_.begin(), handed_over_.end(),
                                       [&](const auto& h) { return h.first == aggregate && h.second == key; });
            if (handed == handed_over_.end()) {
                waiters_.push_back({++waiter_count_, std::string{aggregate}, std::string{key}, std::string{holder},
                                    std::move(resume)});
                return {waiter_count_, std::find(ended_.begin(), ended_.end(), holder) != ended_.end()};
            }
            handed_over_.erase(handed);
        }
        resume();
        return {};
    }
    // The marker on `aggregate` was handed to saga `next` by this process.
    void released_to(std::string_view aggregate, std::string_view next) {
        auto woken = take_waiters([&](const marker_waiter& w) { return w.aggregate == aggregate && w.key == next; });
        if (!woken.empty()) return resume_all(std::move(woken));
        std::lock_guard lock{mutex_};
        if (handed_over_.size() >= max_handed_over) handed_over_.erase(handed_over_.begin());
        handed_over_.emplace_back(std::string{aggregate}, std::string{next});
    }
    // Saga `key` ended: its markers are released (here or in another process), and what it
    // waited for it waits for no more.
    void holder_ended(std::string_view key) {
        {
            std::lock_guard lock{mutex_};
            std::erase_if(handed_over_, [&](const auto& h) { return h.second == key; });
            if (std::find(ended_.begin(), ended_.end(), key) == ended_.end()) {
                if (ended_.size() >= max_ended) ended_.pop_front();
                ended_.emplace_back(key);
            }
        }
        resume_all(take_waiters([&](const marker_waiter& w) { return w.holder == key; }));
    }
    // The wait `id` reached its bound: true if it was still waiting (it is no more).
    bool withdraw(std::uint64_t id) {
        return !take_waiters([&](const marker_waiter& w) { return w.id == id; }).empty();
    }

    // Admission: a saga this runtime starts takes a place among max_running until its end
    // is heard (or its deadline passes); past the limit the start is refused.
    void admit(std::string_view key) {
        if (options_.max_running == 0) return;
        std::lock_guard lock{mutex_};
        if (running_.size() < options_.max_running) {
            running_.insert_or_assign(std::string{key}, std::chrono::steady_clock::now());
            return;
        }
        auto oldest = std::chrono::steady_clock::now();
        for (auto& [k, started] : running_) oldest = std::min(oldest, started);
        auto age = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - oldest);
        auto typical = ended_count_ == 0 ? std::chrono::milliseconds{100} : typical_duration_;
        auto retry_after = std::max(std::chrono::milliseconds{1}, typical - age);
        throw saga_overloaded_error(fmt::format("{} sagas are running, the most this process starts at once; "
                                                "try again in {} ms",
                                                running_.size(), retry_after.count()),
                                    retry_after);
    }
    // The saga left the running ones: it ended (`ended`), or its start or deadline passed.
    void leave(std::string_view key, bool ended) {
        if (options_.max_running == 0) return;
        std::lock_guard lock{mutex_};
        auto it = running_.find(std::string{key});
        if (it == running_.end()) return;
        if (ended) {
            // A moving average of the last few dozen sagas: what the next refusal says to wait.
            auto took =
                std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - it->second);
            typical_duration_ = ended_count_++ == 0 ? took : (typical_duration_ * 7 + took) / 8;
        }
        running_.erase(it);
    }

    void watch(std::string key, std::chrono::milliseconds timeout) {
        clock().after(
            timeout,
            [weak = weak_from_this(), key = std::move(key), timeout] {
                auto self = weak.lock();
                if (!self) return;
                self->expire(key, timeout);
                self->leave(key, false);
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
            bus_.publish(saga_rolled_back{key, record->reason, record->failed_step}, correlation_key{key});
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
    struct marker_waiter {
        std::uint64_t id;
        std::string aggregate;
        std::string key;
        std::string holder;
        std::function<void()> resume;
    };
    static constexpr std::size_t max_handed_over = 1024;
    static constexpr std::size_t max_ended = 256;

    template <class Match>
    std::vector<marker_waiter> take_waiters(Match match) {
        std::vector<marker_waiter> taken;
        std::lock_guard lock{mutex_};
        for (auto it = waiters_.begin(); it != waiters_.end();)
            if (match(*it)) {
                taken.push_back(std::move(*it));
                it = waiters_.erase(it);
            } else {
                ++it;
            }
        return taken;
    }
    static void resume_all(std::vector<marker_waiter> woken) {
        for (auto& w : woken) w.resume();
    }

    choreo::bus& bus_;
    std::unique_ptr<store_ref> store_;
    std::unique_ptr<asio_scheduler> own_clock_;
    runtime_options options_;
    mutable std::mutex mutex_;
    std::vector<std::string> steps_;
    std::vector<std::string> participants_;
    std::vector<marker_waiter> waiters_;
    std::uint64_t waiter_count_ = 0;
    std::vector<std::pair<std::string, std::string>> handed_over_; // (aggregate, saga) heard with no waiter
    std::deque<std::string> ended_;                                // sagas whose end was heard lately
    std::unordered_map<std::string, std::chrono::steady_clock::time_point> running_; // started here, not ended
    std::chrono::milliseconds typical_duration_{0};
    std::uint64_t ended_count_ = 0;
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
