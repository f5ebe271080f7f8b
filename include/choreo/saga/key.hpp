#pragma once
/// @file
/// @brief Saga keys: the first event's type name plus the aggregate id.

#include <string_view>

#include <fmt/format.h>

#include <choreo/core/envelope.hpp>
#include <choreo/core/type_name.hpp>

namespace choreo::saga {

/// @brief The key of the saga that event type `First` starts for `aggregate_id`:
/// `"<event type name>:<aggregate id>"`, as the seed's `OrderCreateEvent` + order id.
template <class First>
[[nodiscard]] correlation_key key_for(std::string_view aggregate_id) {
    return correlation_key{fmt::format("{}:{}", event_type_name<First>(), aggregate_id)};
}

} // namespace choreo::saga
