#pragma once
// The data platform's front door: every completed order is sent to the outside data
// platform (outside/data_platform_api.hpp), at least once and keyed by the event's id (its
// inbox makes a repeat harmless), never in the order's transaction. In one process it is a
// durable listener on the outboxes (listeners.hpp); as a process of its own (`shop serve
// --context data_platform`) it reads the order context's events. Not a saga participant:
// it has no steps and no database of its own.

#include <array>
#include <string_view>

#include <choreo/core/envelope.hpp>

#include "../events/events.hpp"
#include "../kernel/context.hpp"
#include "../kernel/outboxes.hpp"
#include "listeners.hpp"

namespace shop::data_platform {

struct module {
    static constexpr std::string_view name = "data_platform";
    // The event it takes, and the name of the listener (or consumer group) that takes it.
    using event = events::OrderCompleted;
    static constexpr std::string_view listener = "data_platform/send completed order";
    static constexpr std::array<std::string_view, 1> commands{"set_data_platform"};

    // Sends one completed order.
    static void take(outside::data_platform_api& platform, const event& e, const choreo::envelope& env) {
        platform.send(env.id, e.order_id, e.price);
    }
    // In one process: a durable listener on every outbox.
    static void wire(kernel::outboxes& out, outside::data_platform_api& platform) {
        data_platform::wire(out, platform);
    }
    // The world around the shop, for the scenarios: the data platform up, down or slow.
    static void answer(kernel::command_table& table, kernel::outside_systems& outside) {
        table.add("set_data_platform", [&outside](const boost::json::object& args) {
            using behaviour = outside::data_platform_api::behaviour;
            outside.data_platform().set(
                kernel::behaviour_in<behaviour>(args, outside::data_platform_api::behaviour_names));
            return boost::json::object{};
        });
    }
};

} // namespace shop::data_platform
