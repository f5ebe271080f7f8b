#pragma once
/// @file
/// @brief What can go wrong talking to Kafka, as one exception type with a reason code.

#include <choreo/core/errors.hpp>

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

/// @brief A short name for the reason.
[[nodiscard]] constexpr std::string_view to_string(errc code) noexcept {
    switch (code) {
    case errc::bad_configuration: return "bad_configuration";
    case errc::unreachable: return "unreachable";
    case errc::delivery_failed: return "delivery_failed";
    case errc::timeout: return "timeout";
    case errc::topic: return "topic";
    case errc::fatal: return "fatal";
    case errc::closed: return "closed";
    }
    return "unknown";
}

/// @brief A failure talking to Kafka; code() says which kind.
class kafka_error : public choreo::error {
public:
    /// @brief An error of kind `code` with a readable message.
    kafka_error(errc code, const std::string& message) : choreo::error(message), code_(code) {}
    /// @brief Which kind of failure this is.
    [[nodiscard]] errc code() const noexcept { return code_; }

private:
    errc code_;
};

} // namespace choreo::kafka
