// Must not compile: an event that Boost.JSON cannot convert, given to an outbox with the
// default codec. The test `undescribed_event_is_named` builds this file and expects
// choreo's static_assert, which names the fix, instead of Boost.JSON's long error.

#include <choreo/durable/outbox.hpp>
#include <choreo/sqlite/outbox_store.hpp>

struct undescribed_event {
    int id = 0;
};

void subscribe_undescribed(choreo::durable::outbox<choreo::sqlite::outbox_store>& outbox) {
    outbox.subscribe<undescribed_event>([](const undescribed_event&) {}, {.name = "never"});
}
