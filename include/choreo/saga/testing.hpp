#pragma once
/// @file
/// @brief A test harness for sagas, shipped for users' own tests: a manual clock, a
/// network that can reorder and duplicate deliveries, a fault injector, and a harness
/// that wires them to an in-memory bus and store.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <choreo/core/bus.hpp>
#include <choreo/saga/faults.hpp>
#include <choreo/saga/memory_store.hpp>
#include <choreo/saga/observe.hpp>
#include <choreo/saga/runtime.hpp>
#include <choreo/saga/scheduler.hpp>

namespace choreo::saga::testing {

/// @brief A scheduler whose time moves only when told: timeouts and backoffs become deterministic.
/// Due tasks run on the thread that calls advance() or run_due(), in order of due time.
class manual_clock final : public scheduler {
public:
    /// @brief Starts at `start` (by default a fixed date, so outputs do not depend on today).
    explicit manual_clock(time_point start = time_point{std::chrono::hours{24 * 365 * 56}}) : now_(start) {}

    [[nodiscard]] time_point now() const override {
        std::lock_guard lock{mutex_};
        return now_;
    }
    void after(std::chrono::milliseconds delay, std::function<void()> task, task_kind kind) override {
        std::lock_guard lock{mutex_};
        tasks_.emplace(std::pair{now_ + delay, next_++}, entry{std::move(task), kind});
    }
    /// @brief True when no work task is due now (later ones wait for advance()).
    [[nodiscard]] bool idle() const override {
        std::lock_guard lock{mutex_};
        for (auto& [when, e] : tasks_) {
            if (when.first > now_) break;
            if (e.kind == task_kind::work) return false;
        }
        return true;
    }
    /// @brief Runs what is due; never waits, since time here does not pass by itself.
    void wait_idle() override { run_due(); }

    /// @brief Moves time forward by `step`, running each task when its time comes.
    void advance(std::chrono::milliseconds step) {
        time_point target;
        {
            std::lock_guard lock{mutex_};
            target = now_ + step;
        }
        for (;;) {
            std::function<void()> task;
            {
                std::lock_guard lock{mutex_};
                if (tasks_.empty() || tasks_.begin()->first.first > target) {
                    now_ = target;
                    return;
                }
                auto it = tasks_.begin();
                now_ = std::max(now_, it->first.first);
                task = std::move(it->second.task);
                tasks_.erase(it);
            }
            task();
        }
    }
    /// @brief Runs the tasks due now. Returns how many ran.
    std::size_t run_due() {
        std::size_t ran = 0;
        for (;;) {
            std::function<void()> task;
            {
                std::lock_guard lock{mutex_};
                if (tasks_.empty() || tasks_.begin()->first.first > now_) return ran;
                task = std::move(tasks_.begin()->second.task);
                tasks_.erase(tasks_.begin());
            }
            task();
            ++ran;
        }
    }
    /// @brief Tasks waiting, due or not.
    [[nodiscard]] std::size_t pending() const {
        std::lock_guard lock{mutex_};
        return tasks_.size();
    }

private:
    struct entry {
        std::function<void()> task;
        task_kind kind;
    };
    mutable std::mutex mutex_;
    time_point now_;
    std::uint64_t next_ = 0;
    std::map<std::pair<time_point, std::uint64_t>, entry> tasks_;
};

/// @brief In what order a network hands over what it holds.
enum class delivery_order : std::uint8_t {
    fifo,     ///< as sent
    lifo,     ///< newest first: the most reordering a broker could do
    shuffled, ///< a random order from a seed, reproducible
};

/// @brief Stands between participants: every cross-context delivery waits here until
/// run() hands it over, in the chosen order, optionally twice (at-least-once delivery).
/// Give hook() to runtime_options::deliver.
class network {
public:
    /// @brief What the runtime calls with each delivery.
    [[nodiscard]] delivery_hook hook() {
        return [this](std::function<void()> delivery) {
            std::lock_guard lock{mutex_};
            queue_.push_back(std::move(delivery));
        };
    }
    /// @brief Sets the order of hand-over.
    void set_order(delivery_order order, unsigned seed = 1) {
        std::lock_guard lock{mutex_};
        order_ = order;
        random_.seed(seed);
    }
    /// @brief When true, every delivery is handed over twice.
    void duplicate_deliveries(bool on) {
        std::lock_guard lock{mutex_};
        duplicate_ = on;
    }
    /// @brief Hands over one delivery; false when none is waiting.
    bool run_one() {
        std::function<void()> delivery;
        bool twice = false;
        {
            std::lock_guard lock{mutex_};
            if (queue_.empty()) return false;
            std::size_t at = 0;
            if (order_ == delivery_order::lifo) at = queue_.size() - 1;
            if (order_ == delivery_order::shuffled)
                at = std::uniform_int_distribution<std::size_t>{0, queue_.size() - 1}(random_);
            delivery = std::move(queue_[at]);
            queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(at));
            twice = duplicate_;
            ++handed_;
        }
        if (twice) delivery();
        delivery();
        return true;
    }
    /// @brief Hands over deliveries until none is waiting (new ones included). Returns how many.
    std::size_t run() {
        std::size_t n = 0;
        while (run_one()) ++n;
        return n;
    }
    /// @brief Deliveries waiting.
    [[nodiscard]] std::size_t pending() const {
        std::lock_guard lock{mutex_};
        return queue_.size();
    }
    /// @brief Deliveries handed over so far (a duplicated one counts once).
    [[nodiscard]] std::size_t handed_over() const {
        std::lock_guard lock{mutex_};
        return handed_;
    }

private:
    mutable std::mutex mutex_;
    std::deque<std::function<void()>> queue_;
    delivery_order order_ = delivery_order::fifo;
    std::mt19937 random_{1};
    bool duplicate_ = false;
    std::size_t handed_ = 0;
};

/// @brief Settings of a harness.
struct harness_options {
    std::chrono::milliseconds timeout{std::chrono::seconds{30}};    ///< saga deadline (on the manual clock)
    std::chrono::milliseconds marker_wait{std::chrono::seconds{1}}; ///< longest wait for a held aggregate
    std::size_t max_running = 0;                                    ///< sagas running at once; 0: no limit
    unsigned compensation_retries = 3;                              ///< retries of a failing compensation
};

/// @brief A bus, an in-memory store, a manual clock, a network and a fault injector,
/// wired to a saga runtime: build participants on `sagas`, start a saga, call settle().
/// Single-threaded by design: everything runs on the test's thread, in an order it controls.
class harness {
    struct recorded {
        saga_incident_kind kind;
        std::string saga;
        std::string step;
        std::string message;
    };
    // First, so they outlive the bus and runtime, which may still report while shutting down.
    mutable std::mutex mutex_;
    std::vector<recorded> incidents_;

public:
    /// @brief A bus with one thread, a memory store and a runtime on the manual clock and network.
    explicit harness(harness_options options = {})
        : events({.threads = 1}),
          sagas(events, store,
                runtime_options{.timeout = options.timeout,
                                .marker_wait = options.marker_wait,
                                .compensation = {.immediate_retries = 0,
                                                 .delayed_retries = options.compensation_retries,
                                                 .initial_delay = std::chrono::milliseconds{10},
                                                 .backoff_multiplier = 2.0,
                                                 .max_delay = std::chrono::seconds{10},
                                                 .is_retryable = {}},
                                .max_running = options.max_running,
                                .marker_ttl = std::chrono::minutes{10},
                                .executor = {},
                                .clock = &clock,
                                .faults = &faults,
                                .deliver = net.hook(),
                                .on_incident = [this](const saga_incident& i) { record(i); }}) {}
    harness(const harness&) = delete;
    harness& operator=(const harness&) = delete;

    /// @brief Hands over every delivery and runs every task due, until nothing is left to do now.
    void settle() {
        do {
            net.run();
        } while (clock.run_due() > 0 || net.pending() > 0);
    }
    /// @brief Moves the clock forward (running timers as they fall due), settling in between.
    void advance(std::chrono::milliseconds step, std::chrono::milliseconds granularity = std::chrono::milliseconds{1}) {
        for (auto done = std::chrono::milliseconds{0}; done < step; done += granularity) {
            clock.advance(std::min(granularity, step - done));
            settle();
        }
    }
    /// @brief Incidents of one kind so far.
    [[nodiscard]] std::size_t count(saga_incident_kind kind) const {
        std::lock_guard lock{mutex_};
        return static_cast<std::size_t>(
            std::count_if(incidents_.begin(), incidents_.end(), [&](const recorded& r) { return r.kind == kind; }));
    }
    /// @brief Every incident so far, as "kind step: message" lines.
    [[nodiscard]] std::vector<std::string> incidents() const {
        std::lock_guard lock{mutex_};
        std::vector<std::string> lines;
        for (auto& r : incidents_) lines.push_back(std::string{to_string(r.kind)} + " " + r.step + ": " + r.message);
        return lines;
    }
    /// @brief Forgets the incidents so far.
    void clear_incidents() {
        std::lock_guard lock{mutex_};
        incidents_.clear();
    }

    manual_clock clock;    ///< the runtime's time; advance() moves it
    fault_injector faults; ///< makes steps and compensations throw on purpose
    network net;           ///< holds cross-context deliveries until handed over
    memory_store store;    ///< the rollback-state store
    bus events;            ///< the bus the participants publish on
    runtime sagas;         ///< the saga runtime on all of the above

private:
    void record(const saga_incident& i) {
        std::lock_guard lock{mutex_};
        incidents_.push_back({i.kind, std::string{i.saga}, std::string{i.step}, std::string{i.message}});
    }
};

} // namespace choreo::saga::testing
