// libFuzzer target: a Redis stream entry as a consumer receives it (any field list), decoded
// into an envelope and then its payload into an event. Untrusted input must only ever give
// choreo::redis::entry_error or choreo::durable::codec_error, never a crash.
// Input: fields separated by NUL bytes; a field starting with \x01 becomes an integer reply.

#include <choreo/durable/json_codec.hpp>
#include <choreo/redis/streams.hpp>

#include "../support/wire_events.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

using test_events::order_paid;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input{reinterpret_cast<const char*>(data), size};
    choreo::redis::reply fields;
    fields.type = choreo::redis::reply::kind::array;
    std::size_t from = 0;
    while (from <= input.size()) {
        auto end = input.find('\0', from);
        if (end == std::string_view::npos) end = input.size();
        choreo::redis::reply field;
        auto text = input.substr(from, end - from);
        if (!text.empty() && text.front() == '\x01') {
            field.type = choreo::redis::reply::kind::integer;
            field.integer = static_cast<std::int64_t>(text.size());
        } else {
            field.type = choreo::redis::reply::kind::string;
            field.text = std::string{text};
        }
        fields.elements.push_back(std::move(field));
        from = end + 1;
    }
    try {
        auto entry = choreo::redis::detail::decode_entry("1-0", fields, 4096);
        (void)choreo::durable::json_codec{}.decode<order_paid>(entry.payload);
    } catch (const choreo::redis::entry_error&) {
    } catch (const choreo::durable::codec_error&) {}
    return 0;
}
