#pragma once
/// @file
/// @brief What can go wrong talking to Redis, as one exception type with a reason code.

#include <choreo/core/errors.hpp>

#include <boost/describe/enum.hpp>
#include <boost/describe/enum_to_string.hpp>

#include <string>
#include <string_view>

namespace choreo::redis {

/// @brief Why a Redis command or connection failed.
enum class errc {
    bad_url,         ///< the connection URL or options could not be understood
    unreachable,     ///< no connection could be made within the wait allowed
    auth_failed,     ///< the server refused the credentials (not retried: fix the configuration)
    timeout,         ///< the command got no reply within command_timeout
    connection_lost, ///< the connection dropped with the command sent: it may or may not have run
    protocol,        ///< the server's reply could not be parsed
    server_reply,    ///< the server answered with an error reply (a blocking command throws it)
    overloaded,      ///< more commands waiting than queue_limit allows
    closed,          ///< the connection was closed by its owner
};

BOOST_DESCRIBE_ENUM(errc, bad_url, unreachable, auth_failed, timeout, connection_lost, protocol, server_reply,
                    overloaded, closed)

/// @brief A short name for the reason.
[[nodiscard]] inline std::string_view to_string(errc code) noexcept {
    return boost::describe::enum_to_string(code, "unknown");
}

/// @brief A failure talking to Redis; code() says which kind.
class redis_error : public choreo::coded_error<errc> {
public:
    using coded_error::coded_error; ///< an error of kind `code` with a readable message
};

} // namespace choreo::redis
