#pragma once
/// @file
/// @brief How to reach a Kafka cluster: the bootstrap servers and any librdkafka setting
/// (security.protocol, sasl.*, ssl.*, ...), from code or from a `kafka://` URL; and the
/// settings of a consumer.

#include <choreo/kafka/errors.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace choreo::kafka {

/// @brief Where the cluster is and how to talk to it.
struct client_options {
    /// "host:port[,host:port...]": the brokers asked first for the cluster's metadata.
    std::string bootstrap_servers;
    /// Passed to librdkafka as they are (its CONFIGURATION.md lists them); a setting it
    /// refuses throws kafka_error(errc::bad_configuration) naming it. choreo's own choices
    /// (idempotence, manual offset storing) are set first, so these may override them.
    std::map<std::string, std::string> settings;
    /// How long a blocking call (publish(), a topic's creation, the reachability check)
    /// waits before it throws errc::timeout or errc::unreachable.
    std::chrono::milliseconds timeout{10'000};
    /// Where librdkafka's log lines go: `log(level, facility, message)`, with syslog levels
    /// (3 error, 4 warning, 6 info, 7 debug); called from librdkafka's threads. Empty:
    /// librdkafka prints them to stderr itself.
    std::function<void(int level, const std::string& facility, const std::string& message)> log;

    /// @brief Parses `kafka://host:port[,host:port...][?setting=value&...]`, where each
    /// setting goes to `settings` (`kafka://b1:9092,b2:9092?security.protocol=SASL_SSL`).
    /// Values containing '&', '=' or '%' belong in `settings` directly; such a URL is
    /// refused rather than misread. Throws kafka_error(errc::bad_configuration).
    [[nodiscard]] static client_options from_url(std::string_view url) {
        constexpr std::string_view scheme = "kafka://";
        if (!url.starts_with(scheme))
            throw kafka_error(errc::bad_configuration, "a Kafka URL starts with kafka://: '" + std::string{url} + "'");
        url.remove_prefix(scheme.size());
        client_options o;
        auto query_at = url.find('?');
        o.bootstrap_servers = std::string{url.substr(0, query_at)};
        if (o.bootstrap_servers.empty() || o.bootstrap_servers.find('/') != std::string::npos)
            throw kafka_error(errc::bad_configuration,
                              "a Kafka URL names its brokers as host:port[,host:port...]: '" + std::string{url} + "'");
        if (query_at == std::string_view::npos) return o;
        auto query = url.substr(query_at + 1);
        if (query.find('%') != std::string_view::npos)
            throw kafka_error(errc::bad_configuration,
                              "escaped characters in a Kafka URL's settings are not supported: pass such a value in "
                              "client_options::settings");
        while (!query.empty()) {
            auto amp = query.find('&');
            auto pair = query.substr(0, amp);
            auto eq = pair.find('=');
            if (eq == std::string_view::npos || eq == 0 || pair.find('=', eq + 1) != std::string_view::npos)
                throw kafka_error(errc::bad_configuration,
                                  "a Kafka URL's setting is name=value: '" + std::string{pair} + "'");
            o.settings[std::string{pair.substr(0, eq)}] = std::string{pair.substr(eq + 1)};
            query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        }
        return o;
    }
};

/// @brief Settings of a consumer.
struct consumer_options {
    client_options client; ///< the cluster
    /// librdkafka settings for the consumer alone, over client.settings (the dead-letter
    /// producer does not get them): `group.instance.id` for a static member, `session.timeout.ms`.
    std::map<std::string, std::string> settings;
    std::vector<std::string> topics; ///< the topics to read
    std::string group;               ///< the consumer group: one per subscribing context
    /// Where undecodable records and records out of attempts go, with the reason;
    /// "{topic}.dead" when empty.
    std::string dead_letter_topic;
    std::chrono::milliseconds poll{200};        ///< how long one poll waits for records
    std::chrono::milliseconds retry_delay{500}; ///< a failed record is tried again after this
    unsigned max_attempts = 5;                  ///< attempts before a record is dead-lettered
    std::size_t batch = 128;                    ///< records taken from one poll's wake-up before they are handled
    /// Records handled at once, on as many threads (the read loop's among them): records of
    /// one key never at once, and in their partition's order. 1: one at a time.
    std::size_t concurrency = 1;
    std::size_t max_payload = 1 << 20; ///< larger payloads are dead-lettered
    /// Called with each record moved to the dead-letter topic ("topic/partition@offset") and
    /// the reason (for logs, metrics).
    std::function<void(const std::string& record, const std::string& reason)> on_dead_letter{};
};

} // namespace choreo::kafka
