#pragma once
// What the coupon context may publish.

#include <choreo/core/publisher.hpp>

#include "../events/events.hpp"

namespace shop::coupon {
using publisher = choreo::publisher<events::OrderUsed>;
}
