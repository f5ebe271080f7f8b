#pragma once
// What the point context may publish.

#include <choreo/core/publisher.hpp>

#include "../events/events.hpp"

namespace shop::point {
using publisher = choreo::publisher<events::PaymentOrderUse>;
}
