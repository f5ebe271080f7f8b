#pragma once
// A simulated external data platform API: it can be up, down, or slow.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>

namespace shop::data_platform {

class api {
public:
    enum class behaviour { up, down, slow };

    void set(behaviour b, std::chrono::milliseconds delay = std::chrono::milliseconds{300}) {
        std::lock_guard lock{mutex_};
        behaviour_ = b;
        delay_ = delay;
    }
    void send(std::int64_t order_id, std::int64_t price) {
        behaviour b;
        std::chrono::milliseconds delay;
        {
            std::lock_guard lock{mutex_};
            b = behaviour_;
            delay = delay_;
            ++attempts_;
        }
        if (b == behaviour::down) throw std::runtime_error("data platform unreachable (connection refused)");
        if (b == behaviour::slow) std::this_thread::sleep_for(delay);
        std::lock_guard lock{mutex_};
        received_.push_back({order_id, price});
    }
    struct record {
        std::int64_t order_id;
        std::int64_t price;
    };
    std::vector<record> received() const {
        std::lock_guard lock{mutex_};
        return received_;
    }
    unsigned attempts() const {
        std::lock_guard lock{mutex_};
        return attempts_;
    }

private:
    mutable std::mutex mutex_;
    behaviour behaviour_ = behaviour::up;
    std::chrono::milliseconds delay_{300};
    unsigned attempts_ = 0;
    std::vector<record> received_;
};

} // namespace shop::data_platform
