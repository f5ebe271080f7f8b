#pragma once
// The data platform send: a durable listener on the outboxes (the order context's writes
// the rows: it commits OrderCompleted). The row is
// written in the transaction that completes the order, so the send survives a crash right
// after the commit; the relay delivers it on the bus's pool, with retries. A slow or
// failing data platform never rolls the order back or delays it (the seed's first
// problem); a send that keeps failing becomes a failed outbox row, listed and resubmittable.

#include <chrono>

#include "../events/events.hpp"
#include "../kernel/outboxes.hpp"
#include "../outside/data_platform_api.hpp"

namespace shop::data_platform {

inline void wire(kernel::outboxes& out, outside::data_platform_api& platform) {
    out.subscribe<events::OrderCompleted>(
        [&platform](const events::OrderCompleted& e, const choreo::envelope& env) {
            platform.send(env.id, e.order_id, e.price); // keyed by the event's id: a repeat is harmless
        },
        {.name = "data_platform/send completed order",
         .retry = {.immediate_retries = 0,
                   .delayed_retries = 2,
                   .initial_delay = std::chrono::milliseconds{20},
                   .backoff_multiplier = 2.0,
                   .max_delay = std::chrono::milliseconds{100},
                   .is_retryable = {}}});
}

} // namespace shop::data_platform
