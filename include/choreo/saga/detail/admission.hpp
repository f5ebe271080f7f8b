#pragma once
// Back-pressure for one saga runtime (decision 0047): the sagas it started and has not heard
// end, at most `limit`; past it a start is refused with when to try again. Internal.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

#include <choreo/saga/errors.hpp>

namespace choreo::saga::detail {

class admission {
public:
    explicit admission(std::size_t limit) noexcept : limit_(limit) {}

    // Saga `key` starts: it takes a place, or throws saga_overloaded_error (no place left).
    void enter(std::string_view key) {
        if (limit_ == 0) return;
        const auto now = clock::now();
        std::lock_guard lock{mutex_};
        if (running_.size() < limit_) {
            running_.insert_or_assign(std::string{key}, now);
            return;
        }
        auto oldest = now;
        for (auto& [k, started] : running_) oldest = std::min(oldest, started);
        auto age = std::chrono::duration_cast<std::chrono::milliseconds>(now - oldest);
        auto typical = ended_ == 0 ? std::chrono::milliseconds{100} : typical_;
        auto retry_after = std::max(std::chrono::milliseconds{1}, typical - age);
        throw saga_overloaded_error(
            fmt::format("{} sagas are running, the most this process starts at once; try again in {} ms",
                        running_.size(), retry_after.count()),
            retry_after);
    }

    // Saga `key` leaves the running ones: it ended (`ended`), or its start or deadline passed.
    void leave(std::string_view key, bool ended) {
        if (limit_ == 0) return;
        std::lock_guard lock{mutex_};
        auto it = running_.find(std::string{key});
        if (it == running_.end()) return;
        if (ended) {
            // A moving average of the last few dozen sagas: what the next refusal says to wait.
            auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - it->second);
            typical_ = ended_++ == 0 ? took : (typical_ * 7 + took) / 8;
        }
        running_.erase(it);
    }

private:
    using clock = std::chrono::steady_clock;
    std::size_t limit_;
    std::mutex mutex_;
    std::unordered_map<std::string, clock::time_point> running_;
    std::chrono::milliseconds typical_{0};
    std::uint64_t ended_ = 0;
};

} // namespace choreo::saga::detail
