#pragma once
// What the product context may publish; publishing anything else does not compile.

#include <choreo/core/publisher.hpp>

#include "../events/events.hpp"

namespace shop::product {
using publisher = choreo::publisher<events::OrderDeduct>;
}
