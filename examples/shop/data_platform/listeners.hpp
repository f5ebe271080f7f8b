#pragma once
// The data platform send: after the order's transaction committed, on the bus's pool, with
// retries. A slow or failing data platform never rolls the order back or delays it (the
// seed's first problem); a send that keeps failing reaches the error handler.

#include <chrono>

#include <choreo/choreo.hpp>

#include "../events/events.hpp"
#include "sender.hpp"

namespace shop::data_platform {

[[nodiscard]] inline choreo::connection wire(choreo::bus& bus, api& platform) {
    return bus.subscribe<events::OrderCompleted>(
        [&platform](const events::OrderCompleted& e) { platform.send(e.order_id, e.price); },
        {.name = "data_platform/send completed order",
         .when = choreo::phase::after_commit,
         .mode = choreo::delivery::asynchronous,
         .without_transaction = choreo::no_transaction_policy::run_now,
         .retry = {.immediate_retries = 0,
                   .delayed_retries = 2,
                   .initial_delay = std::chrono::milliseconds{20},
                   .backoff_multiplier = 2.0,
                   .max_delay = std::chrono::milliseconds{100},
                   .is_retryable = {}}});
}

} // namespace shop::data_platform
