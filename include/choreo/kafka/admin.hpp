#pragma once
/// @file
/// @brief Creating topics with the partitions a deployment wants (a topic created on first
/// use gets the broker's default count, which bounds a consumer group's parallelism).

#include <choreo/kafka/detail/client.hpp>
#include <choreo/kafka/errors.hpp>
#include <choreo/kafka/options.hpp>

#include <memory>
#include <string>

namespace choreo::kafka {

/// @brief Creates `topic` with `partitions` partitions, each on `replication` brokers, and
/// waits until the cluster's metadata shows it with every partition led, so a consumer group
/// joined next sees its partitions. Returns false if it existed already (whatever its
/// partitions; it is waited for too). Throws kafka_error: errc::unreachable, errc::timeout
/// (no answer, or the topic not in the metadata within client_options::timeout), or
/// errc::topic with the broker's reason.
inline bool create_topic(const client_options& options, const std::string& topic, int partitions, int replication = 1) {
    auto conf = detail::make_conf(options, {});
    rd_kafka_conf_set_opaque(conf.get(), const_cast<client_options*>(&options)); // for its log function
    auto k = detail::make_handle(RD_KAFKA_PRODUCER, std::move(conf));
    detail::check_reachable(k.get(), options, options.timeout);
    char reason[512];
    std::unique_ptr<rd_kafka_NewTopic_t, decltype(&rd_kafka_NewTopic_destroy)> request{
        rd_kafka_NewTopic_new(topic.c_str(), partitions, replication, reason, sizeof reason),
        &rd_kafka_NewTopic_destroy};
    if (!request) throw kafka_error(errc::topic, "cannot request topic '" + topic + "': " + reason);
    std::unique_ptr<rd_kafka_queue_t, decltype(&rd_kafka_queue_destroy)> answers{rd_kafka_queue_new(k.get()),
                                                                                 &rd_kafka_queue_destroy};
    auto* requests = request.get();
    rd_kafka_CreateTopics(k.get(), &requests, 1, nullptr, answers.get());
    std::unique_ptr<rd_kafka_event_t, decltype(&rd_kafka_event_destroy)> answer{
        rd_kafka_queue_poll(answers.get(), static_cast<int>(options.timeout.count())), &rd_kafka_event_destroy};
    if (!answer)
        throw kafka_error(errc::timeout, "the cluster did not answer the creation of topic '" + topic + "' within " +
                                             std::to_string(options.timeout.count()) + " ms");
    if (auto err = rd_kafka_event_error(answer.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR)
        throw kafka_error(errc::topic,
                          "cannot create topic '" + topic + "': " + rd_kafka_event_error_string(answer.get()));
    bool created = true;
    std::size_t count = 0;
    const auto* results = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(answer.get()), &count);
    for (std::size_t i = 0; i < count; ++i) {
        auto err = rd_kafka_topic_result_error(results[i]);
        if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            created = false;
        else if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            throw kafka_error(errc::topic,
                              "cannot create topic '" + topic + "': " + rd_kafka_topic_result_error_string(results[i]));
    }
    if (!detail::wait_for_topic(k.get(), topic, options.timeout))
        throw kafka_error(errc::timeout, "topic '" + topic + "' was created but not in the cluster's metadata within " +
                                             std::to_string(options.timeout.count()) + " ms");
    return created;
}

} // namespace choreo::kafka
