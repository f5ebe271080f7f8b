#pragma once
/// @file
/// @brief Events into Redis Streams: a versioned envelope per entry, and a publisher (XADD
/// with a trimming policy).

#include <choreo/core/envelope.hpp>
#include <choreo/core/errors.hpp>
#include <choreo/core/type_name.hpp>
#include <choreo/durable/codec.hpp>
#include <choreo/durable/json_codec.hpp>
#include <choreo/durable/wire.hpp>
#include <choreo/redis/connection.hpp>

#include <cstddef>
#include <exception>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace choreo::redis {

/// @brief The schema version of event type E (see durable::schema_version_of).
using durable::schema_version_of;

/// @brief How a stream is kept bounded: XADD ... MAXLEN [~] max_length.
struct trim_policy {
    std::size_t max_length = 1'000'000; ///< entries kept; 0 for no trimming
    bool approximate = true;            ///< "~": cheaper, may keep a few more
};

/// @brief One stream entry as decoded: the envelope's fields and the encoded payload
/// (durable::wire_envelope), and the entry's stream id.
struct stream_entry : durable::wire_envelope {
    std::string id; ///< the entry's stream id ("1700000000000-0")
};

/// @brief A stream entry that is not a valid choreo envelope; the message says why.
using entry_error = durable::envelope_error;

namespace detail {

// The fields of an entry, in the order XADD gets them.
inline std::vector<std::string> entry_fields(std::string_view type, int schema, const envelope& env,
                                             std::string payload) {
    std::vector<std::string> fields;
    for (auto& [name, value] : durable::wire_fields(type, schema, env)) {
        fields.emplace_back(name);
        fields.push_back(std::move(value));
    }
    fields.emplace_back("payload");
    fields.push_back(std::move(payload));
    return fields;
}

// Decodes an entry's field list (as XREADGROUP returns it) into a stream_entry.
inline stream_entry decode_entry(std::string id, const reply& fields, std::size_t max_payload) {
    if (fields.type != reply::kind::array || fields.elements.size() % 2 != 0)
        throw entry_error("the entry's fields are not name-value pairs");
    std::map<std::string, std::string, std::less<>> named;
    for (std::size_t i = 0; i < fields.elements.size(); i += 2) {
        if (fields.elements[i].type != reply::kind::string || fields.elements[i + 1].type != reply::kind::string)
            throw entry_error("the entry has a field that is not a string");
        named[fields.elements[i].text] = fields.elements[i + 1].text;
    }
    auto wire = durable::decode_wire(
        [&](std::string_view name) -> const std::string* {
            auto it = named.find(name);
            return it == named.end() ? nullptr : &it->second;
        },
        max_payload);
    return {std::move(wire), std::move(id)};
}

inline std::vector<std::string_view> views(const std::vector<std::string>& strings) {
    return {strings.begin(), strings.end()};
}

} // namespace detail

/// @brief Publishes events to Redis streams, encoded with Codec (Boost.JSON by default).
/// Thread-safe. Used as the delivery of a durable outbox listener, a row is marked
/// delivered only after Redis acknowledged the XADD, so a context's events leave it only
/// if its transaction committed.
template <class Codec = durable::json_codec>
class stream_publisher {
public:
    /// @brief Publishes on `redis` (which must outlive it), trimming every stream by `trim`.
    explicit stream_publisher(connection& redis, trim_policy trim = {}, Codec codec = {},
                              std::size_t max_payload = 1 << 20)
        : redis_(redis), trim_(trim), codec_(std::move(codec)), max_payload_(max_payload) {}

    /// @brief Appends `event` with its envelope to `stream` and waits for Redis; returns the
    /// entry's id. Throws redis_error, or durable::codec_error for an event it cannot encode.
    template <class E>
    std::string publish(std::string_view stream, const E& event, const envelope& env) {
        auto command = xadd(stream, event, env);
        return redis_.command(detail::views(command)).as_string();
    }

    /// @brief As publish(), without waiting: `done(error, entry id)` runs on the connection's strand.
    template <class E>
    void async_publish(std::string_view stream, const E& event, const envelope& env,
                       std::function<void(std::exception_ptr, std::string)> done) {
        auto command = xadd(stream, event, env);
        redis_.async_command(detail::views(command), [done = std::move(done)](std::exception_ptr error, reply r) {
            if (!error && r.is_error())
                error = std::make_exception_ptr(redis_error(errc::server_reply, "XADD refused: " + r.text));
            done(error, error ? std::string{} : r.text);
        });
    }

private:
    template <class E>
    std::vector<std::string> xadd(std::string_view stream, const E& event, const envelope& env) const {
        auto payload = codec_.encode(event);
        if (payload.size() > max_payload_)
            throw durable::codec_error(std::string{event_type_name<E>()} + " encodes to " +
                                       std::to_string(payload.size()) + " bytes, more than the " +
                                       std::to_string(max_payload_) + " allowed");
        std::vector<std::string> command{"XADD", std::string{stream}};
        if (trim_.max_length > 0) {
            command.emplace_back("MAXLEN");
            if (trim_.approximate) command.emplace_back("~");
            command.push_back(std::to_string(trim_.max_length));
        }
        command.emplace_back("*");
        for (auto& f : detail::entry_fields(event_type_name<E>(), schema_version_of<E>(), env, std::move(payload)))
            command.push_back(std::move(f));
        return command;
    }

    connection& redis_;
    trim_policy trim_;
    Codec codec_;
    std::size_t max_payload_;
};

} // namespace choreo::redis
