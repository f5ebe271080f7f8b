#pragma once
/// @file
/// @brief Time for sagas: the clock deadlines are read from and the timers that retries
/// and timeouts wait on. A real one on Asio; testing.hpp has a manual one.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <choreo/saga/status.hpp>

namespace choreo::saga {

/// @brief What a scheduled task is, for draining.
enum class task_kind : std::uint8_t {
    work,     ///< a retry: drain() waits for it
    watchdog, ///< a timeout check: drain() does not wait for it
};

/// @brief The clock and timers a saga runtime uses. Tasks run on a thread of the
/// scheduler's choosing, never on the caller's, and never after the scheduler is destroyed.
class scheduler {
public:
    virtual ~scheduler() = default;
    /// @brief The wall-clock time deadlines are compared with.
    [[nodiscard]] virtual time_point now() const = 0;
    /// @brief Runs `task` once `delay` has passed.
    virtual void after(std::chrono::milliseconds delay, std::function<void()> task, task_kind kind) = 0;
    /// @brief True when no task of kind `work` is waiting or running.
    [[nodiscard]] virtual bool idle() const = 0;
    /// @brief Waits until idle() (a manual scheduler runs what is due instead of waiting).
    virtual void wait_idle() = 0;
};

/// @brief A scheduler on an Asio executor: one steady_timer per task, no sleeping thread.
/// Destroying it cancels what is waiting and waits for tasks already running.
class asio_scheduler final : public scheduler {
public:
    /// @brief Runs tasks and timers on `executor`.
    explicit asio_scheduler(boost::asio::any_io_executor executor)
        : executor_(std::move(executor)), state_(std::make_shared<state>()) {}
    ~asio_scheduler() override { stop(); }

    /// @brief Cancels what is waiting, refuses new tasks, and waits for tasks running now.
    /// Do not call it from a task.
    void stop() {
        std::unique_lock lock{state_->mutex};
        state_->stopped = true;
        for (auto& [id, weak] : state_->timers)
            if (auto timer = weak.lock()) timer->cancel();
        state_->changed.wait(lock, [&] { return state_->running == 0; });
    }
    asio_scheduler(const asio_scheduler&) = delete;
    asio_scheduler& operator=(const asio_scheduler&) = delete;

    [[nodiscard]] time_point now() const override { return std::chrono::system_clock::now(); }

    void after(std::chrono::milliseconds delay, std::function<void()> task, task_kind kind) override {
        auto timer = std::make_shared<boost::asio::steady_timer>(executor_, delay);
        std::uint64_t id = 0;
        {
            std::lock_guard lock{state_->mutex};
            if (state_->stopped) return;
            id = state_->next_id++;
            state_->timers.emplace(id, timer);
            if (kind == task_kind::work) ++state_->waiting_work;
        }
        // The handler owns the timer, so no timer outlives the executor's context: if the
        // context is destroyed first, destroying its pending handlers destroys the timers.
        timer->async_wait([s = state_, id, kind, timer, task = std::move(task)](const boost::system::error_code&) {
            {
                std::lock_guard lock{s->mutex};
                s->timers.erase(id);
                if (s->stopped) {
                    if (kind == task_kind::work) --s->waiting_work;
                    s->changed.notify_all();
                    return;
                }
                ++s->running;
            }
            try {
                task();
            } catch (...) {
                // Tasks report their own failures; one that escapes must not take the pool down.
            }
            std::lock_guard lock{s->mutex};
            --s->running;
            if (kind == task_kind::work) --s->waiting_work;
            s->changed.notify_all();
        });
    }

    [[nodiscard]] bool idle() const override {
        std::lock_guard lock{state_->mutex};
        return state_->waiting_work == 0;
    }
    void wait_idle() override {
        std::unique_lock lock{state_->mutex};
        state_->changed.wait(lock, [&] { return state_->waiting_work == 0; });
    }

private:
    struct state {
        std::mutex mutex;
        std::condition_variable changed;
        std::unordered_map<std::uint64_t, std::weak_ptr<boost::asio::steady_timer>> timers;
        std::uint64_t next_id = 1;
        std::size_t waiting_work = 0;
        std::size_t running = 0;
        bool stopped = false;
    };
    boost::asio::any_io_executor executor_;
    std::shared_ptr<state> state_;
};

} // namespace choreo::saga
