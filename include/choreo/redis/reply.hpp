#pragma once
/// @file
/// @brief A Redis reply as a value: a string, status, integer, nil, error or array of replies.

#include <choreo/redis/errors.hpp>

#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace choreo::redis {

/// @brief One reply (RESP2), owned.
struct reply {
    /// @brief The reply's type.
    enum class kind : std::uint8_t { string, status, integer, nil, error, array };

    kind type = kind::nil;       ///< which of the fields below holds the value
    std::string text;            ///< for string, status and error replies (binary safe)
    std::int64_t integer = 0;    ///< for integer replies
    std::vector<reply> elements; ///< for array replies

    /// @brief True for an error reply ("-ERR ...", "-NOPERM ...").
    [[nodiscard]] bool is_error() const noexcept { return type == kind::error; }
    /// @brief True for the nil reply (a missing key).
    [[nodiscard]] bool is_nil() const noexcept { return type == kind::nil; }
    /// @brief The text of a string or status reply; throws redis_error for anything else.
    [[nodiscard]] const std::string& as_string() const {
        if (type != kind::string && type != kind::status) throw mismatch("a string");
        return text;
    }
    /// @brief The value of an integer reply; throws redis_error for anything else.
    [[nodiscard]] std::int64_t as_integer() const {
        if (type != kind::integer) throw mismatch("an integer");
        return integer;
    }
    /// @brief Throws redis_error (server_reply) if this is an error reply; returns itself otherwise.
    const reply& value() const {
        if (is_error()) throw redis_error(errc::server_reply, "redis replied with an error: " + text);
        return *this;
    }

private:
    [[nodiscard]] redis_error mismatch(const char* wanted) const {
        static constexpr const char* names[] = {"a string", "a status", "an integer", "nil", "an error", "an array"};
        std::string message = std::string{"expected "} + wanted + " reply, got " + names[static_cast<int>(type)];
        if (type == kind::error) message += ": " + text;
        return redis_error(type == kind::error ? errc::server_reply : errc::protocol, message);
    }
};

/// @brief What a command's completion receives: an error (null on success) and the reply.
/// An error reply from the server is a reply (is_error()), not an exception.
using completion = std::function<void(std::exception_ptr, reply)>;

} // namespace choreo::redis
