#pragma once
// What the payment context may publish.

#include <choreo/core/publisher.hpp>

#include "../events/events.hpp"

namespace shop::payment {
using publisher =
    choreo::publisher<events::OrderPaymentCreated, events::PaymentOrderUse, events::OrderPaymentCompleted>;
}
