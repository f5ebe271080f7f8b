#pragma once
// The event type the fuzz targets decode payloads into.

#include <boost/describe/class.hpp>

#include <cstdint>

namespace choreo_fuzz {
struct order_paid {
    std::int64_t order_id = 0;
    std::int64_t amount = 0;
};
BOOST_DESCRIBE_STRUCT(order_paid, (), (order_id, amount))
} // namespace choreo_fuzz
