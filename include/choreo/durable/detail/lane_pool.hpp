#pragma once
// Runs the lanes of a consumer's batch side by side: the records of one lane (one key) in
// order on one thread, the lanes at once, and returns when every lane is through. Not part
// of the API.

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace choreo::durable::detail {

// The lane of a record with correlation key `key` among `width`: one key, one lane.
inline std::size_t lane_of(std::string_view key, std::size_t width) noexcept {
    return std::hash<std::string_view>{}(key) % width;
}

// `width` lanes at a time: the calling thread runs one, width - 1 helper threads the others.
// A helper sleeps until it is given a lane, so a batch with one busy lane wakes nobody.
// One caller at a time (the consumer's read loop).
class lane_pool {
public:
    explicit lane_pool(std::size_t width) {
        for (std::size_t i = 1; i < width; ++i) {
            helpers_.push_back(std::make_unique<helper>());
            helpers_.back()->thread = std::thread{[this, h = helpers_.back().get()] { serve(*h); }};
        }
    }
    ~lane_pool() {
        for (auto& h : helpers_) {
            {
                std::lock_guard lock{h->mutex};
                h->closing = true;
            }
            h->wake.notify_one();
        }
        for (auto& h : helpers_) h->thread.join();
    }
    lane_pool(const lane_pool&) = delete;
    lane_pool& operator=(const lane_pool&) = delete;

    [[nodiscard]] std::size_t width() const noexcept { return helpers_.size() + 1; }

    // Runs work(lane) for each of `lanes` (at most width() of them), side by side; returns
    // when all have returned, rethrowing the first exception one of them threw.
    void run(const std::vector<std::size_t>& lanes, const std::function<void(std::size_t)>& work) {
        if (lanes.empty()) return;
        const std::size_t handed = std::min(lanes.size() - 1, helpers_.size());
        {
            std::lock_guard lock{done_mutex_};
            pending_ = handed;
            error_ = nullptr;
        }
        work_ = &work;
        for (std::size_t i = 0; i < handed; ++i) {
            auto& h = *helpers_[i];
            {
                std::lock_guard lock{h.mutex};
                h.lane = lanes[i + 1];
            }
            h.wake.notify_one();
        }
        run_lane(lanes[0]);
        // More lanes than threads: the caller runs the rest itself, after its own.
        for (std::size_t i = handed + 1; i < lanes.size(); ++i) run_lane(lanes[i]);
        std::unique_lock lock{done_mutex_};
        done_.wait(lock, [this] { return pending_ == 0; });
        work_ = nullptr;
        if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    }

private:
    struct helper {
        std::mutex mutex;
        std::condition_variable wake;
        std::optional<std::size_t> lane;
        bool closing = false;
        std::thread thread;
    };

    void serve(helper& h) {
        for (;;) {
            std::size_t lane = 0;
            {
                std::unique_lock lock{h.mutex};
                h.wake.wait(lock, [&] { return h.closing || h.lane.has_value(); });
                if (!h.lane) return; // closing, nothing handed
                lane = *std::exchange(h.lane, std::nullopt);
            }
            run_lane(lane);
            std::lock_guard lock{done_mutex_};
            if (--pending_ == 0) done_.notify_one();
        }
    }

    void run_lane(std::size_t lane) noexcept {
        try {
            (*work_)(lane);
        } catch (...) {
            std::lock_guard lock{done_mutex_};
            if (!error_) error_ = std::current_exception();
        }
    }

    std::vector<std::unique_ptr<helper>> helpers_;
    // Set by run() before any helper is handed a lane (the helper's mutex orders it).
    const std::function<void(std::size_t)>* work_ = nullptr;
    std::mutex done_mutex_;
    std::condition_variable done_;
    std::size_t pending_ = 0;
    std::exception_ptr error_;
};

} // namespace choreo::durable::detail
