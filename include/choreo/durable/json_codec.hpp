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
        if constexpr (!convertible<E>) {
            require_conversion<E>();
            return {};
        } else {
            try {
                return boost::json::serialize(boost::json::value_from(event));
            } catch (const std::exception& e) {
                throw codec_error(std::string{"cannot encode "} + std::string{event_type_name<E>()} + ": " + e.what());
            }
        }
    }

    /// @brief The event read back from JSON text; a codec_error names what is wrong.
    template <class E>
    [[nodiscard]] E decode(std::string_view text) const {
        if constexpr (!convertible<E>) {
            require_conversion<E>();
            throw codec_error("unreachable");
        } else {
            return decode_json<E>(text);
        }
    }

private:
    // Checked before Boost.JSON is asked, whose own error for a type it cannot convert
    // runs to some two hundred lines.
    template <class E>
    static constexpr bool convertible = boost::json::has_value_from<E>::value&& boost::json::has_value_to<E>::value;
    template <class E>
    static constexpr void require_conversion() {
        static_assert(convertible<E>,
                      "choreo::durable::json_codec cannot convert this event type to JSON: describe it with "
                      "BOOST_DESCRIBE_STRUCT(Type, (), (member, ...)) after its definition (#include "
                      "<boost/describe.hpp>), or give it Boost.JSON's tag_invoke overloads (value_from_tag and "
                      "value_to_tag)");
    }

    template <class E>
    static E decode_json(std::string_view text) {
        boost::system::error_code error;
        boost::json::value json = boost::json::parse(text, error);
        if (error)
            throw codec_error(std::string{"cannot decode "} + std::string{event_type_name<E>()} + ": not JSON (" +
                              error.message() + ")");
        auto result = boost::json::try_value_to<E>(json);
        if (result.has_error())
            throw codec_error(std::string{"cannot decode "} + std::string{event_type_name<E>()} + " from " +
                              std::string{text.substr(0, 200)} + ": " + result.error().message());
        return std::move(result).value();
    }
};

} // namespace choreo::durable
