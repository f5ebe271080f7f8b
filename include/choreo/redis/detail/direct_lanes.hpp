#pragma once
// The direct sockets of one connection (direct_socket.hpp): idle ones kept for the next
// blocking call, busy ones known so that closing can interrupt them, and which threads
// have asynchronous commands outstanding, whose blocking calls must queue behind them on
// the strand. Not part of the API.

#include <choreo/redis/detail/direct_socket.hpp>
#include <choreo/redis/errors.hpp>
#include <choreo/redis/options.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace choreo::redis::detail {

// Counts each thread's asynchronous commands not answered yet, by a hash of its id: a
// collision only sends a blocking call through the strand when it could have gone direct.
class async_slots {
public:
    std::size_t enter() noexcept {
        auto slot = mine();
        counts_[slot].fetch_add(1, std::memory_order_relaxed);
        return slot;
    }
    void leave(std::size_t slot) noexcept { counts_[slot].fetch_sub(1, std::memory_order_release); }
    // True while this thread has asynchronous commands outstanding.
    [[nodiscard]] bool busy() const noexcept { return counts_[mine()].load(std::memory_order_acquire) != 0; }

private:
    static std::size_t mine() noexcept { return std::hash<std::thread::id>{}(std::this_thread::get_id()) % 64; }
    std::array<std::atomic<std::uint32_t>, 64> counts_{};
};

class direct_lanes {
public:
    explicit direct_lanes(const connection_options& options)
        : options_(options), delay_(options.reconnect_initial_delay) {}
    ~direct_lanes() { close(); }
    direct_lanes(const direct_lanes&) = delete;
    direct_lanes& operator=(const direct_lanes&) = delete;

    // A socket for one blocking call, or null when the call goes through the strand: no
    // socket could be opened lately (the strand waits for the server and reconnects, with
    // the connection's semantics). Throws errc::closed after close().
    std::unique_ptr<direct_socket> take() {
        {
            std::lock_guard lock{mutex_};
            if (closed_) throw closed_error();
            while (!idle_.empty()) {
                auto socket = std::move(idle_.back());
                idle_.pop_back();
                if (socket->stale()) continue;
                busy_.push_back(socket.get());
                return socket;
            }
            if (direct_socket::clock::now() < next_attempt_) return nullptr;
        }
        std::unique_ptr<direct_socket> socket;
        try {
            socket = std::make_unique<direct_socket>(options_);
        } catch (const redis_error&) {
            std::lock_guard lock{mutex_};
            next_attempt_ = direct_socket::clock::now() + delay_;
            delay_ = std::min(delay_ * 2, options_.reconnect_max_delay);
            return nullptr;
        }
        opened_.fetch_add(1, std::memory_order_relaxed);
        std::lock_guard lock{mutex_};
        delay_ = options_.reconnect_initial_delay;
        if (closed_) throw closed_error();
        busy_.push_back(socket.get());
        return socket;
    }

    // Ends a call: a socket that may be used again is kept for the next one. Closing its
    // descriptor happens under the lock, so close() never interrupts a reused number.
    void give_back(std::unique_ptr<direct_socket> socket, bool reusable) noexcept {
        std::lock_guard lock{mutex_};
        std::erase(busy_, socket.get());
        if (reusable && !closed_ && idle_.size() < max_idle) idle_.push_back(std::move(socket));
        socket.reset();
    }

    // Fails every call under way (their sockets are shut down) and every one after.
    void close() noexcept {
        std::lock_guard lock{mutex_};
        closed_ = true;
        for (auto* socket : busy_) socket->interrupt();
        idle_.clear();
    }

    [[nodiscard]] bool closed() const noexcept {
        std::lock_guard lock{mutex_};
        return closed_;
    }
    // How many sockets were opened.
    [[nodiscard]] std::uint64_t opened() const noexcept { return opened_.load(std::memory_order_relaxed); }

    static redis_error closed_error() { return redis_error(errc::closed, "the Redis connection was closed"); }

private:
    static constexpr std::size_t max_idle = 64;

    connection_options options_;
    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<direct_socket>> idle_;
    std::vector<direct_socket*> busy_;
    bool closed_ = false;
    direct_socket::clock::time_point next_attempt_{};
    std::chrono::milliseconds delay_;
    std::atomic<std::uint64_t> opened_{0};
};

} // namespace choreo::redis::detail
