#pragma once
// librdkafka's handles with owners, the configuration built from client_options, and the
// reachability check shared by the producer, the consumer and the topic administration.

#include <choreo/kafka/errors.hpp>
#include <choreo/kafka/options.hpp>

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace choreo::kafka::detail {

struct conf_deleter {
    void operator()(rd_kafka_conf_t* c) const noexcept { rd_kafka_conf_destroy(c); }
};
using conf_ptr = std::unique_ptr<rd_kafka_conf_t, conf_deleter>;

struct handle_deleter {
    void operator()(rd_kafka_t* k) const noexcept { rd_kafka_destroy(k); }
};
using handle_ptr = std::unique_ptr<rd_kafka_t, handle_deleter>;

struct headers_deleter {
    void operator()(rd_kafka_headers_t* h) const noexcept { rd_kafka_headers_destroy(h); }
};
using headers_ptr = std::unique_ptr<rd_kafka_headers_t, headers_deleter>;

inline void set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
    char reason[512];
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), reason, sizeof reason) != RD_KAFKA_CONF_OK)
        throw kafka_error(errc::bad_configuration, "Kafka setting '" + name + "': " + reason);
}

// librdkafka's log callback, for a handle whose opaque is the client_options it was made from.
inline void log_to_options(const rd_kafka_t* k, int level, const char* facility, const char* message) {
    auto* options = static_cast<const client_options*>(rd_kafka_opaque(k));
    if (options && options->log) options->log(level, facility ? facility : "", message ? message : "");
}

// The configuration: choreo's `defaults` first, then the user's settings over them, then
// `more` (settings of one kind of client). With a log function in `options`, the handle's
// opaque must be `&options`, alive as long as the handle.
inline conf_ptr make_conf(const client_options& options,
                          const std::vector<std::pair<std::string, std::string>>& defaults,
                          const std::map<std::string, std::string>& more = {}) {
    if (options.bootstrap_servers.empty())
        throw kafka_error(errc::bad_configuration, "no Kafka bootstrap servers given (host:port[,host:port...])");
    conf_ptr conf{rd_kafka_conf_new()};
    set(conf.get(), "bootstrap.servers", options.bootstrap_servers);
    for (auto& [name, value] : defaults) set(conf.get(), name, value);
    for (auto& [name, value] : options.settings) set(conf.get(), name, value);
    for (auto& [name, value] : more) set(conf.get(), name, value);
    if (options.log) rd_kafka_conf_set_log_cb(conf.get(), &log_to_options);
    return conf;
}

// Creates the client; librdkafka owns `conf` from then on.
inline handle_ptr make_handle(rd_kafka_type_t type, conf_ptr conf) {
    char reason[512];
    rd_kafka_t* k = rd_kafka_new(type, conf.get(), reason, sizeof reason);
    if (!k) throw kafka_error(errc::bad_configuration, std::string{"cannot create the Kafka client: "} + reason);
    (void)conf.release();
    return handle_ptr{k};
}

// Throws errc::unreachable unless a broker gives the cluster's metadata within `wait`.
inline void check_reachable(rd_kafka_t* k, const client_options& options, std::chrono::milliseconds wait) {
    const rd_kafka_metadata_t* metadata = nullptr;
    auto err = rd_kafka_metadata(k, 0, nullptr, &metadata, static_cast<int>(wait.count()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        throw kafka_error(errc::unreachable, "no Kafka broker of " + options.bootstrap_servers + " answered within " +
                                                 std::to_string(wait.count()) + " ms: " + rd_kafka_err2str(err) +
                                                 " (a broker that refuses the credentials or the TLS settings says "
                                                 "why in the client's log)");
    rd_kafka_metadata_destroy(metadata);
}

// Whether `topic` is in the cluster's metadata with every partition led, asked again every
// 100 ms until `wait` ends. A topic just created (by this client or another) can take a
// moment to appear in the metadata a broker gives; a consumer group joined before then sees
// no partition of it until its next metadata refresh.
inline bool wait_for_topic(rd_kafka_t* k, const std::string& topic, std::chrono::milliseconds wait) {
    std::unique_ptr<rd_kafka_topic_t, decltype(&rd_kafka_topic_destroy)> handle{
        rd_kafka_topic_new(k, topic.c_str(), nullptr), &rd_kafka_topic_destroy};
    if (!handle) return false;
    auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        const rd_kafka_metadata_t* metadata = nullptr;
        bool ready = false;
        if (rd_kafka_metadata(k, 0, handle.get(), &metadata,
                              static_cast<int>(std::max<std::int64_t>(left.count(), 1))) ==
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            for (int t = 0; t < metadata->topic_cnt; ++t) {
                const auto& found = metadata->topics[t];
                if (topic != found.topic || found.err != RD_KAFKA_RESP_ERR_NO_ERROR || found.partition_cnt == 0)
                    continue;
                ready = true;
                for (int p = 0; p < found.partition_cnt; ++p) ready = ready && found.partitions[p].leader >= 0;
            }
            rd_kafka_metadata_destroy(metadata);
        }
        if (ready) return true;
        if (std::chrono::steady_clock::now() + std::chrono::milliseconds{100} >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds{100});
    }
}

// The value of header `name`, if the record has it.
inline bool header(rd_kafka_headers_t* headers, const char* name, std::string& value) {
    const void* data = nullptr;
    std::size_t size = 0;
    if (!headers || rd_kafka_header_get_last(headers, name, &data, &size) != RD_KAFKA_RESP_ERR_NO_ERROR) return false;
    value.assign(data ? static_cast<const char*>(data) : "", data ? size : 0);
    return true;
}

} // namespace choreo::kafka::detail
