#pragma once
// The events the transport tests (Redis Streams, Kafka) and the fuzz targets send and decode:
// one type, and two of one name under different schema versions, to check that a consumer
// refuses the version it does not read.

#include <boost/describe/class.hpp>

#include <cstdint>
#include <string_view>

namespace test_events {

struct order_paid {
    std::int64_t order_id = 0;
    std::int64_t amount = 0;
};
BOOST_DESCRIBE_STRUCT(order_paid, (), (order_id, amount))

// Version 2 of the event below: a consumer of version 1 sends it to the dead letters.
struct order_paid_v2 {
    static constexpr std::string_view choreo_event_name = "test_events::order_paid_by_name";
    static constexpr int choreo_schema_version = 2;
    std::int64_t order_id = 0;
};
BOOST_DESCRIBE_STRUCT(order_paid_v2, (), (order_id))

// An event named explicitly (not after its C++ type), and version 1 of the one above.
struct order_paid_named {
    static constexpr std::string_view choreo_event_name = "test_events::order_paid_by_name";
    std::int64_t order_id = 0;
};
BOOST_DESCRIBE_STRUCT(order_paid_named, (), (order_id))

} // namespace test_events
