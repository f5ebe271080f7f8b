#pragma once
// The asynchronous deliveries of a commit, grouped per executor or strand; pooled by the bus.

#include <cstddef>
#include <memory>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include <choreo/core/detail/channel.hpp>
#include <choreo/core/detail/event_buffer.hpp>

namespace choreo::detail {

struct async_item {
    std::uint32_t event;
    phase when;
    completion outcome;
    unsigned attempt;
    std::shared_ptr<listener_record> record;
};

struct async_group {
    lane* target = nullptr;
    std::vector<async_item> items;
};

// The asynchronous deliveries of one commit: the commit's events (moved out of the unit
// of work, so nothing is copied) and one group of items per executor or strand. Each
// group is one job. Batches and their vectors are pooled by the bus and reused.
struct async_batch {
    std::unique_ptr<event_buffer> events;
    std::vector<async_group> groups;
    std::size_t used = 0;
    std::atomic<std::size_t> pending{0};

    void add(lane* target, async_item item) {
        for (std::size_t g = 0; g < used; ++g) {
            if (groups[g].target == target) {
                groups[g].items.push_back(std::move(item));
                return;
            }
        }
        if (used == groups.size()) groups.emplace_back();
        auto& group = groups[used++];
        group.target = target;
        group.items.push_back(std::move(item));
    }

    void reset() noexcept {
        for (std::size_t g = 0; g < used; ++g) groups[g].items.clear();
        used = 0;
    }
};

} // namespace choreo::detail
