#pragma once
/// @file
/// @brief The envelope as it travels between processes: named text fields beside the
/// encoded payload, the same on every transport (Redis Streams entry fields, Kafka record
/// headers), and their checked decoding.

#include <choreo/core/envelope.hpp>
#include <choreo/core/errors.hpp>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace choreo::durable {

/// @brief The schema version of event type E: `E::choreo_schema_version` if it declares one,
/// else 1. Bump it when the payload's shape changes incompatibly; consumers refuse (and
/// dead-letter) records of another version rather than misread them.
template <class E>
[[nodiscard]] constexpr int schema_version_of() noexcept {
    if constexpr (requires { E::choreo_schema_version; })
        return static_cast<int>(E::choreo_schema_version);
    else
        return 1;
}

/// @brief A record that is not a valid choreo envelope; the message says why. Permanent:
/// such a record goes to the dead letters.
class envelope_error : public permanent_error {
public:
    using permanent_error::permanent_error;
};

/// @brief An envelope as it arrived: its fields checked, the payload still encoded.
struct wire_envelope {
    std::string type;                             ///< the event's type name
    int schema = 0;                               ///< the payload's schema version
    event_id event;                               ///< the event's id
    event_id causation;                           ///< the id of the event that caused it
    std::string key;                              ///< the correlation key
    std::chrono::system_clock::time_point time{}; ///< when it was published
    std::string payload;                          ///< the event, encoded by the codec
    /// When the sender handed it to the transport (an outbox relay's hand-over); absent in
    /// records of senders older than the field. What hop_latency measures the relay by.
    std::optional<std::chrono::system_clock::time_point> sent{};
};

/// @brief The version of the field layout; a consumer refuses any other.
inline constexpr std::string_view wire_version = "1";

/// @brief The envelope's fields, name then value, without the payload. Besides the
/// publication time in milliseconds ("time", which every reader needs), it carries the same
/// time in microseconds ("time_us") and the moment of this call ("sent_us": the sender hands
/// the record to its transport), both optional for readers, which is how a hop's stages
/// are told apart (hop_latency).
[[nodiscard]] inline std::vector<std::pair<std::string_view, std::string>>
wire_fields(std::string_view type, int schema, const envelope& env) {
    using std::chrono::duration_cast;
    auto ms = duration_cast<std::chrono::milliseconds>(env.time.time_since_epoch()).count();
    auto us = duration_cast<std::chrono::microseconds>(env.time.time_since_epoch()).count();
    auto sent = duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    return {{"v", std::string{wire_version}},
            {"type", std::string{type}},
            {"schema", std::to_string(schema)},
            {"id", env.id.to_string()},
            {"causation", env.causation_id.to_string()},
            {"key", std::string{env.key.view()}},
            {"time", std::to_string(ms)},
            {"time_us", std::to_string(us)},
            {"sent_us", std::to_string(sent)}};
}

namespace detail {

template <class T>
T wire_number(std::string_view text, std::string_view field) {
    T value{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size())
        throw envelope_error("field '" + std::string{field} + "' is not a number: '" + std::string{text.substr(0, 40)} +
                             "'");
    return value;
}

} // namespace detail

/// @brief Checks and decodes the fields that `field(name)` finds (a pointer to the value;
/// null when absent), the payload last, under the name "payload". Throws envelope_error naming what is wrong: a
/// missing field, another layout version, an id or number that does not parse, a time out
/// of range, a payload over `max_payload` bytes.
template <class Lookup>
[[nodiscard]] wire_envelope decode_wire(Lookup&& field, std::size_t max_payload) {
    auto need = [&](std::string_view name) -> std::string {
        const std::string* value = field(name);
        if (!value) throw envelope_error("the record lacks the field '" + std::string{name} + "'");
        return *value;
    };
    wire_envelope e;
    if (auto v = need("v"); v != wire_version)
        throw envelope_error("envelope version '" + v.substr(0, 20) + "' is not " + std::string{wire_version});
    e.type = need("type");
    e.schema = detail::wire_number<int>(need("schema"), "schema");
    auto event = event_id::parse(need("id"));
    auto causation = event_id::parse(need("causation"));
    if (!event || !causation) throw envelope_error("an event id is not 32 hexadecimal digits");
    e.event = *event;
    e.causation = *causation;
    e.key = need("key");
    // The clock counts in nanoseconds: milliseconds past about the year 2262 would overflow it.
    constexpr auto latest = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::time_point::max().time_since_epoch())
                                .count();
    auto ms = detail::wire_number<std::int64_t>(need("time"), "time");
    if (ms < 0 || ms > latest) throw envelope_error("field 'time' is out of range: " + std::to_string(ms));
    e.time = std::chrono::system_clock::time_point{std::chrono::milliseconds{ms}};
    // The finer times are for measuring hops only: one that does not parse, or that
    // disagrees with "time", is ignored rather than refusing the record.
    constexpr auto latest_us = latest * 1000;
    auto micros = [&](std::string_view name) -> std::optional<std::chrono::system_clock::time_point> {
        const std::string* text = field(name);
        std::int64_t us = 0;
        if (!text || text->empty()) return std::nullopt;
        auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), us);
        if (ec != std::errc{} || end != text->data() + text->size() || us < 0 || us > latest_us) return std::nullopt;
        return std::chrono::system_clock::time_point{std::chrono::microseconds{us}};
    };
    if (auto fine = micros("time_us"); fine && std::chrono::floor<std::chrono::milliseconds>(*fine) == e.time)
        e.time = *fine;
    e.sent = micros("sent_us");
    const std::string* payload = field("payload");
    if (!payload) throw envelope_error("the record lacks the field 'payload'");
    if (payload->size() > max_payload)
        throw envelope_error("the payload has " + std::to_string(payload->size()) + " bytes, more than the " +
                             std::to_string(max_payload) + " allowed");
    e.payload = *payload;
    return e;
}

} // namespace choreo::durable
