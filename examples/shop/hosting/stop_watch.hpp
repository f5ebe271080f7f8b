#pragma once
// How a serving process stops: one thread takes SIGTERM and SIGINT for the whole process.
// The first signal raises the stop_signal; once the grace period has passed, or at a second
// signal, the watch says what is left undone and ends the process with stopped_short.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>

#include "serve_and_load.hpp"

namespace shop::app {

// Raised once, at the first signal. Whoever waits between rounds of its work (the serving
// loop's sweeps, a reply's retry, the wait for Kafka partitions) waits on it, so a stop
// wakes them at once rather than at the end of a sleep.
class stop_signal {
public:
    void raise() {
        {
            std::lock_guard lock{mutex_};
            raised_ = true;
        }
        changed_.notify_all();
    }
    [[nodiscard]] bool raised() const noexcept { return raised_.load(); }
    // Waits up to `at_most`; true once the stop was asked for.
    bool wait_for(std::chrono::steady_clock::duration at_most) {
        std::unique_lock lock{mutex_};
        return changed_.wait_for(lock, at_most, [this] { return raised_.load(); });
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::atomic<bool> raised_{false};
};

class stop_watch {
public:
    // Blocks SIGTERM and SIGINT in this thread, and so in every thread started after it:
    // construct it before any other thread starts.
    stop_watch(const serve_options& options, stop_signal& stop);
    // The process stopped in time: the watch ends.
    ~stop_watch();
    stop_watch(const stop_watch&) = delete;
    stop_watch& operator=(const stop_watch&) = delete;

private:
    void watch();

    const serve_options& options_;
    stop_signal& stop_;
    std::atomic<bool> stopped_{false};
    sigset_t signals_{};
    std::thread thread_;
};

} // namespace shop::app
