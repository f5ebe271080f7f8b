#pragma once
// How a serving process stops: one thread takes SIGTERM and SIGINT for the whole process.
// The first signal sets `stop_requested`; once the grace period has passed, or at a second
// signal, the watch says what is left undone and ends the process with stopped_short.

#include <atomic>
#include <csignal>
#include <thread>

#include "serve_and_load.hpp"

namespace shop::app {

class stop_watch {
public:
    // Blocks SIGTERM and SIGINT in this thread, and so in every thread started after it:
    // construct it before any other thread starts.
    stop_watch(const serve_options& options, std::atomic<bool>& stop_requested);
    // The process stopped in time: the watch ends.
    ~stop_watch();
    stop_watch(const stop_watch&) = delete;
    stop_watch& operator=(const stop_watch&) = delete;

private:
    void watch();

    const serve_options& options_;
    std::atomic<bool>& stop_requested_;
    std::atomic<bool> stopped_{false};
    sigset_t signals_{};
    std::thread thread_;
};

} // namespace shop::app
