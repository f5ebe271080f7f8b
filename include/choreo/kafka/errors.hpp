#pragma once
/// @file
/// @brief What can go wrong talking to Kafka, as one exception type with a reason code.

#include <choreo/core/errors.hpp>

#include <boost/describe/enum.hpp>
#include <boost/describe/enum_to_string.hpp>

#include <string>
#include <string_view>

namespace choreo::kafka {

/// @brief Why a Kafka operation failed.
enum class errc {
    bad_configuration, ///< a setting librdkafka refused, or a URL that could not be understood
    unreachable,       ///< no broker answered within the wait allowed
    delivery_failed,   ///< the broker did not acknowledge a record (it may be retried)
    timeout,           ///< no answer within the wait allowed
    topic,             ///< a topic could not be created or read
    fatal,             ///< the client hit an error it cannot recover from (idempotence broken, fenced)
    closed,            ///< the client was closed by its owner
};

BOOST_DESCRIBE_ENUM(errc, bad_configuration, unreachable, delivery_failed, timeout, topic, fatal, closed)

/// @brief A short name for the reason.
[[nodiscard]] inline std::string_view to_string(errc code) noexcept {
    return boost::describe::enum_to_string(code, "unknown");
}

/// @brief A failure talking to Kafka; code() says which kind.
class kafka_error : public choreo::coded_error<errc> {
public:
    using coded_error::coded_error; ///< an error of kind `code` with a readable message
};

} // namespace choreo::kafka
