#pragma once
/// @file
/// @brief The default codec: JSON through Boost.JSON.
///
/// Structs described with BOOST_DESCRIBE_STRUCT need nothing more; any other type works
/// once it has Boost.JSON's `tag_invoke` overloads (value_from_tag, value_to_tag).
/// Needs the choreo::durable target, which links Boost.JSON's library.

#include <string>
#include <string_view>

#include <boost/json.hpp>

#include <choreo/core/type_name.hpp>
#include <choreo/durable/codec.hpp>

namespace choreo::durable {

/// @brief Encodes events as compact JSON objects; decoding checks every member's type.
struct json_codec {
    /// @brief The event as JSON text.
    template <class E>
    [[nodiscard]] std::string encode(const E& event) const {
        try {
            return boost::json::serialize(boost::json::value_from(event));
        } catch (const std::exception& e) {
            throw codec_error(std::string{"cannot encode "} + std::string{event_type_name<E>()} + ": " + e.what());
        }
    }

    /// @brief The event read back from JSON text; a codec_error names what is wrong.
    template <class E>
    [[nodiscard]] E decode(std::string_view text) const {
        boost::system::error_code error;
        boost::json::value json = boost::json::parse(text, error);
        if (error)
            throw codec_error(std::string{"cannot decode "} + std::string{event_type_name<E>()} +
                              ": not JSON (" + error.message() + ")");
        auto result = boost::json::try_value_to<E>(json);
        if (result.has_error())
            throw codec_error(std::string{"cannot decode "} + std::string{event_type_name<E>()} + " from " +
                              std::string{text.substr(0, 200)} + ": " + result.error().message());
        return std::move(result).value();
    }
};

} // namespace choreo::durable
