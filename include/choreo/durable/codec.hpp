#pragma once
/// @file
/// @brief How an event becomes the text stored in an outbox row, and back.
///
/// A codec is any type with `encode(const E&) -> std::string` and
/// `decode<E>(std::string_view) -> E`; choreo::durable::json_codec is the default.

#include <concepts>
#include <string>
#include <string_view>

#include <choreo/core/errors.hpp>

namespace choreo::durable {

/// @brief A payload could not be encoded or decoded. Permanent: retrying cannot help,
/// so the relay moves such a row to the failed state at once, with this message.
class codec_error : public permanent_error {
public:
    using permanent_error::permanent_error;
};

/// @brief C can encode events of type E to text and decode them back.
template <class C, class E>
concept codec_for = requires(const C& codec, const E& event, std::string_view text) {
    { codec.encode(event) } -> std::convertible_to<std::string>;
    { codec.template decode<E>(text) } -> std::same_as<E>;
};

} // namespace choreo::durable
