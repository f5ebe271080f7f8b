#pragma once
// An outbox row as every database store reads it back: the columns as the database gave
// them, turned into a durable::outbox_row. An id that is not 32 hexadecimal digits marks the
// row as a problem (the relay fails it, naming the column) rather than dropping it; times are
// kept as milliseconds since the epoch, an event's time as nanoseconds.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>

#include <choreo/durable/store.hpp>

namespace choreo::durable::detail {

struct outbox_columns {
    std::int64_t id = 0;
    std::string event_type;
    std::string listener;
    std::string event_id;
    std::string causation_id;
    std::string key;
    std::int64_t time_ns = 0;
    std::string payload;
    std::int64_t attempts = 0;
    std::int64_t state = 0;
    std::string last_error;
};

[[nodiscard]] inline outbox_row row_of(outbox_columns c) {
    outbox_row row;
    row.id = c.id;
    auto event = choreo::event_id::parse(c.event_id);
    auto causation = choreo::event_id::parse(c.causation_id);
    if (!event)
        row.problem = "corrupt row: event_id '" + c.event_id + "' is not 32 hex digits";
    else if (!causation)
        row.problem = "corrupt row: causation_id '" + c.causation_id + "' is not 32 hex digits";
    row.event = event.value_or(choreo::event_id{});
    row.causation = causation.value_or(choreo::event_id{});
    row.event_type = std::move(c.event_type);
    row.listener = std::move(c.listener);
    row.key = std::move(c.key);
    row.time = std::chrono::system_clock::time_point{
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds{c.time_ns})};
    row.payload = std::move(c.payload);
    row.attempts = static_cast<unsigned>(std::max<std::int64_t>(0, c.attempts));
    row.state = c.state == 1 ? row_state::delivered : c.state == 2 ? row_state::failed : row_state::pending;
    row.last_error = std::move(c.last_error);
    return row;
}

[[nodiscard]] inline std::int64_t milliseconds_of(std::chrono::system_clock::time_point t) noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
[[nodiscard]] inline std::int64_t nanoseconds_of(std::chrono::system_clock::time_point t) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

} // namespace choreo::durable::detail
