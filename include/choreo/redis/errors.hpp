#pragma once
/// @file
/// @brief What can go wrong talking to Redis, as one exception type with a reason code.

#include <choreo/core/errors.hpp>

#include <string>
#include <string_view>

namespace choreo::redis {

/// @brief Why a Redis command or connection failed.
enum class errc {
    bad_url,          ///< the connection URL or options could not be understood
    unreachable,      ///< no connection could be made within the wait allowed
    auth_failed,      ///< the server refused the credentials (not retried: fix the configuration)
    timeout,          ///< the command got no reply within command_timeout
    connection_lost,  ///< the connection dropped with the command sent: it may or may not have run
    protocol,         ///< the server's reply could not be parsed
    server_reply,     ///< the server answered with an error reply (a blocking command throws it)
    overloaded,       ///< more commands waiting than queue_limit allows
    closed,           ///< the connection was closed by its owner
};

/// @brief A short name for the reason.
[[nodiscard]] constexpr std::string_view to_string(errc code) noexcept {
    switch (code) {
    case errc::bad_url: return "bad_url";
    case errc::unreachable: return "unreachable";
    case errc::auth_failed: return "auth_failed";
    case errc::timeout: return "timeout";
    case errc::connection_lost: return "connection_lost";
    case errc::protocol: return "protocol";
    case errc::server_reply: return "server_reply";
    case errc::overloaded: return "overloaded";
    case errc::closed: return "closed";
    }
    return "unknown";
}

/// @brief A failure talking to Redis; code() says which kind.
class redis_error : public choreo::error {
public:
    /// @brief An error of kind `code` with a readable message.
    redis_error(errc code, const std::string& message) : choreo::error(message), code_(code) {}
    /// @brief Which kind of failure this is.
    [[nodiscard]] errc code() const noexcept { return code_; }

private:
    errc code_;
};

} // namespace choreo::redis
