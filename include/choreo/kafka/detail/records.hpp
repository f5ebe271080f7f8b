#pragma once
// What a Kafka consumer reads off a record: its envelope (headers, key, value) decoded, its
// place ("topic/partition@offset"), and the headers of its copy in a dead-letter topic. Not
// part of the API.

#include <choreo/durable/wire.hpp>
#include <choreo/kafka/detail/client.hpp>
#include <choreo/kafka/producer.hpp>

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace choreo::kafka::detail {

inline std::string where(const rd_kafka_message_t* m) {
    return std::string{rd_kafka_topic_name(m->rkt)} + "/" + std::to_string(m->partition) + "@" +
           std::to_string(m->offset);
}

inline std::string_view key_of(const rd_kafka_message_t* m) {
    return {m->key ? static_cast<const char*>(m->key) : "", m->key ? m->key_len : 0};
}

inline std::string_view value_of(const rd_kafka_message_t* m) {
    return {m->payload ? static_cast<const char*>(m->payload) : "", m->payload ? m->len : 0};
}

// The record's envelope: the headers, the key and the value. Throws durable::envelope_error.
inline durable::wire_envelope decode_record(const rd_kafka_message_t* m, std::size_t max_payload) {
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(m, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) headers = nullptr;
    std::map<std::string, std::string, std::less<>> fields;
    for (const char* name : {"v", "type", "schema", "id", "causation", "time", "time_us", "sent_us"}) {
        std::string value;
        if (header(headers, name, value)) fields[name] = std::move(value);
    }
    fields["key"] = std::string{key_of(m)};
    fields["payload"] = std::string{value_of(m)};
    return durable::decode_wire(
        [&](std::string_view name) -> const std::string* {
            auto it = fields.find(name);
            return it == fields.end() ? nullptr : &it->second;
        },
        max_payload);
}

// The headers of the record's copy in a dead-letter topic: the reason, where it came from,
// then the record's own headers.
inline std::vector<record_header> dead_letter_headers(rd_kafka_message_t* m, const std::string& reason,
                                                      const std::string& group) {
    std::vector<record_header> headers{{"dead.reason", reason},
                                       {"dead.topic", rd_kafka_topic_name(m->rkt)},
                                       {"dead.partition", std::to_string(m->partition)},
                                       {"dead.offset", std::to_string(m->offset)},
                                       {"dead.group", group}};
    rd_kafka_headers_t* original = nullptr;
    if (rd_kafka_message_headers(m, &original) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name = nullptr;
        const void* value = nullptr;
        std::size_t size = 0;
        for (std::size_t i = 0;
             rd_kafka_header_get_all(original, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
            headers.push_back({name, value ? std::string{static_cast<const char*>(value), size} : std::string{}});
    }
    return headers;
}

} // namespace choreo::kafka::detail
