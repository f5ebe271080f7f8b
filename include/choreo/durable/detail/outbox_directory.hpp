#pragma once
/// @file
/// @brief Which resources the outboxes of one bus write rows for, per event type: how an
/// outbox tells "another outbox writes this event" from "no outbox ever will" (an event
/// that durable listeners would silently never receive).

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>
#include <utility>

namespace choreo::durable::detail {

/// Thread-safe. Event type names are event_type_name<E>() views into static storage.
class outbox_directory {
public:
    /// @brief The directory of the outboxes of the bus at `bus_address`, shared by them
    /// and made by the first; it lives as long as one of them keeps it.
    [[nodiscard]] static std::shared_ptr<outbox_directory> of(const void* bus_address) {
        static std::mutex mutex;
        static std::map<const void*, std::weak_ptr<outbox_directory>> directories;
        std::lock_guard lock{mutex};
        std::erase_if(directories, [](const auto& entry) { return entry.second.expired(); });
        auto& slot = directories[bus_address];
        auto directory = slot.lock();
        if (!directory) {
            directory = std::make_shared<outbox_directory>();
            slot = directory;
        }
        return directory;
    }

    /// @brief An outbox on `resource` writes rows for `event_type` from now on.
    void cover(const void* resource, std::string_view event_type) {
        std::lock_guard lock{mutex_};
        ++covered_[{resource, event_type}];
    }
    /// @brief That outbox no longer does (it is being destroyed).
    void uncover(const void* resource, std::string_view event_type) noexcept {
        std::lock_guard lock{mutex_};
        auto found = covered_.find({resource, event_type});
        if (found != covered_.end() && --found->second == 0) covered_.erase(found);
    }
    /// @brief Whether some outbox writes rows for `event_type` committed on `resource`.
    [[nodiscard]] bool covers(const void* resource, std::string_view event_type) const {
        std::lock_guard lock{mutex_};
        return covered_.contains({resource, event_type});
    }

private:
    mutable std::mutex mutex_;
    std::map<std::pair<const void*, std::string_view>, std::size_t> covered_;
};

} // namespace choreo::durable::detail
