// Must not compile with warnings as errors: a subscription whose connection is dropped at
// once would unsubscribe its listener without a word. The test
// `dropped_subscription_is_named` builds this file and expects the warning to say so.

#include <choreo/core/bus.hpp>

struct dropped_event {
    int id = 0;
};

void subscribe_and_drop(choreo::bus& bus) {
    bus.subscribe<dropped_event>([](const dropped_event&) {});
}
