#pragma once
// What the Kafka tests share: one broker for the binary's run (a JVM takes seconds to start;
// each case uses topics and groups of its own), clients on it, envelopes with ids of their
// own, and readers of a topic's raw records.

#include <choreo/durable.hpp>
#include <choreo/kafka.hpp>
#include <choreo/sqlite.hpp>

#include "../core/support.hpp"
#include "../support/kafka_broker.hpp"
#include "../support/transport_contract.hpp"
#include "../support/wire_events.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace kafka_test {

using namespace choreo::kafka;
using namespace std::chrono_literals;
using test_events::order_paid;

// One broker for the binary's cases (starting a JVM takes seconds); each case uses topics
// and groups of its own.
inline test_support::kafka_broker& broker() {
    static test_support::kafka_broker shared;
    return shared;
}

inline client_options client(std::chrono::milliseconds timeout = 10s) {
    auto o = client_options::from_url(broker().url());
    o.timeout = timeout;
    return o;
}

// An envelope with ids of its own (unique within the binary's run).
inline choreo::envelope envelope_for(const std::string& key) {
    static std::atomic<std::uint64_t> next{1};
    auto n = next++;
    return {choreo::event_id{0xabc, n}, choreo::event_id{0xdef, n}, choreo::correlation_key{key},
            std::chrono::system_clock::now(), choreo::event_type_name<order_paid>()};
}

inline consumer_options reading(const std::string& topic, const std::string& group) {
    consumer_options o;
    o.client = client();
    o.topics = {topic};
    o.group = group;
    o.retry_delay = 50ms;
    o.max_attempts = 3;
    return o;
}

// What a consumer group received, in arrival order per key, and the ids it applied (its inbox).
struct received_log {
    std::mutex mutex;
    std::map<std::string, std::vector<std::int64_t>> by_key;
    std::set<std::string> applied;
    int deliveries = 0;

    void take(const order_paid& e, const choreo::envelope& env) {
        std::lock_guard lock{mutex};
        ++deliveries;
        if (!applied.insert(env.id.to_string()).second) return; // the inbox: a redelivery is skipped
        by_key[std::string{env.key.view()}].push_back(e.order_id);
    }
    std::size_t unique() {
        std::lock_guard lock{mutex};
        return applied.size();
    }
};

// Every record of `topic` from the start, up to `count`, as a group of its own reads them.
struct raw_record {
    std::map<std::string, std::string> headers;
    std::string value;
};
inline std::vector<raw_record> read_topic(const std::string& topic, std::size_t count) {
    char reason[512];
    auto* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", broker().bootstrap().c_str(), reason, sizeof reason);
    rd_kafka_conf_set(conf, "group.id", ("raw-reader-" + topic).c_str(), reason, sizeof reason);
    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", reason, sizeof reason);
    rd_kafka_t* k = rd_kafka_new(RD_KAFKA_CONSUMER, conf, reason, sizeof reason);
    REQUIRE(k);
    rd_kafka_poll_set_consumer(k);
    auto* topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, topic.c_str(), RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(k, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    std::vector<raw_record> records;
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (records.size() < count && std::chrono::steady_clock::now() < deadline) {
        rd_kafka_message_t* m = rd_kafka_consumer_poll(k, 200);
        if (!m) continue;
        if (!m->err) {
            raw_record r;
            r.value.assign(static_cast<const char*>(m->payload), m->len);
            rd_kafka_headers_t* headers = nullptr;
            if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                const char* name = nullptr;
                const void* value = nullptr;
                std::size_t size = 0;
                for (std::size_t i = 0;
                     rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
                    r.headers[name] = std::string{static_cast<const char*>(value), size};
            }
            records.push_back(std::move(r));
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(k);
    rd_kafka_destroy(k);
    return records;
}

// How many records `topic`'s partitions hold (the sum of their watermarks' distances).
inline std::int64_t records_in(const std::string& topic, int partitions) {
    char reason[512];
    auto* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", broker().bootstrap().c_str(), reason, sizeof reason);
    std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)> k{
        rd_kafka_new(RD_KAFKA_CONSUMER, conf, reason, sizeof reason), &rd_kafka_destroy};
    REQUIRE(k);
    std::int64_t total = 0;
    for (int p = 0; p < partitions; ++p) {
        std::int64_t low = 0, high = 0;
        REQUIRE(rd_kafka_query_watermark_offsets(k.get(), topic.c_str(), p, &low, &high, 10'000) ==
                RD_KAFKA_RESP_ERR_NO_ERROR);
        total += high - low;
    }
    return total;
}

// Kafka under the transport contract (../support/transport_contract.hpp); a topic and a
// group of its own per case, as the binary's cases share one broker.
struct kafka_transport {
    std::string topic;
    producer<> out{client()};
    std::chrono::milliseconds patience{60'000};

    explicit kafka_transport(std::string name) : topic("contract." + std::move(name)) {
        REQUIRE(create_topic(client(), topic, 4));
    }
    void publish(const order_paid& e, const choreo::envelope& env) { out.publish(topic, e, env); }
    // The row is delivered once Kafka acknowledged the record: the producer's delivery
    // report is the row's, and the relay hands a batch over without waiting on its thread.
    template <class Outbox>
    void carry(Outbox& outbox) {
        outbox.template subscribe_async<order_paid>(
            [this](const order_paid& e, const choreo::envelope& env, choreo::durable::delivery_report report) {
                out.async_publish(topic, e, env, std::move(report));
            },
            {.name = "to kafka"});
    }
    auto read(transport_contract::dead_letter_hook dead) {
        auto o = reading(topic, topic + ".platform");
        if (dead) o.on_dead_letter = [dead](const std::string&, const std::string& reason) { dead(reason); };
        return std::make_unique<consumer<>>(std::move(o));
    }
    void settled() {}
};

} // namespace kafka_test
