#pragma once
/// @file
/// @brief The RAII handle a subscription returns.

#include <memory>
#include <utility>

#include <boost/signals2/connection.hpp>

#include <choreo/core/detail/channel.hpp>

namespace choreo {

/// @brief Keeps a listener subscribed; destroying it (or calling disconnect()) unsubscribes.
///
/// Built on a Boost.Signals2 connection. Disconnecting is thread-safe and may happen
/// during a dispatch, even from inside the listener itself: once disconnect() has
/// returned, the listener is never started again, neither synchronously nor from a
/// queued asynchronous job. (A call already running on another thread finishes, as with
/// Boost.Signals2.) Move-only.
class connection {
public:
    /// @brief An empty connection.
    connection() noexcept = default;
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    /// @brief Takes over the subscription of `other`, leaving it empty.
    connection(connection&& other) noexcept = default;
    /// @brief Unsubscribes what this held, then takes over `other`.
    connection& operator=(connection&& other) noexcept {
        if (this != &other) {
            disconnect();
            link_ = std::move(other.link_);
            channel_ = std::move(other.channel_);
            record_ = std::move(other.record_);
        }
        return *this;
    }
    /// @brief Unsubscribes.
    ~connection() { disconnect(); }

    /// @brief Unsubscribes now; does nothing when already disconnected.
    void disconnect() noexcept {
        auto record = record_.lock();
        if (!record) return;
        record->alive.store(false, std::memory_order_release);
        link_.disconnect();
        if (auto channel = channel_.lock()) {
            try {
                channel->rebuild();
            } catch (...) {
                // Out of memory while rebuilding: the listener stays in the snapshot but its
                // alive flag keeps it from running, so unsubscribing still holds.
            }
        }
        record_.reset();
    }

    /// @brief True while the listener is subscribed and the bus exists.
    [[nodiscard]] bool connected() const noexcept {
        auto record = record_.lock();
        return record && record->alive.load(std::memory_order_acquire) && !channel_.expired();
    }

    /// @brief Leaves the listener subscribed for the life of the bus and empties this handle.
    void release() noexcept {
        link_ = {};
        channel_.reset();
        record_.reset();
    }

    /// @cond internal
    connection(boost::signals2::connection link, std::weak_ptr<detail::channel> channel,
               std::weak_ptr<detail::listener_record> record) noexcept
        : link_(std::move(link)), channel_(std::move(channel)), record_(std::move(record)) {}
    /// @endcond

private:
    boost::signals2::connection link_;
    std::weak_ptr<detail::channel> channel_;
    std::weak_ptr<detail::listener_record> record_;
};

} // namespace choreo
