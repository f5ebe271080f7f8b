#pragma once
// What the order context may publish.

#include <choreo/core/publisher.hpp>

#include "../events/events.hpp"

namespace shop::order {
using publisher =
    choreo::publisher<events::OrderCreateStart, events::OrderCreated, events::PayStart, events::OrderCompleted>;
}
