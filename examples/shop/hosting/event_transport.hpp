#pragma once
// How a serving process's events travel: what its context publishes leaves through its
// outbox into a Redis stream (or, with --kafka, a Kafka topic) per event type; what other
// contexts publish comes in from theirs, a consumer group per subscribing step; commands
// come in on the process's command stream. It owns the Redis connections, the publishers
// and the consumers. Built when choreo::redis is (with --kafka, when choreo::kafka is too).

#include "io_thread.hpp"
#include "serve_and_load.hpp"
#include "stop_watch.hpp"
#include "streams.hpp"

#include <choreo/core/envelope.hpp>
#include <choreo/core/type_name.hpp>
#include <choreo/redis.hpp>
#ifdef SHOP_WITH_KAFKA
#include <choreo/kafka.hpp>
#endif

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../kernel/outboxes.hpp"

namespace shop::app {

class event_transport {
public:
    event_transport(io_thread& io, const serve_options& options) : io_(io), options_(options) {
        redis_options_ = choreo::redis::parse_url(options_.redis_url);
        redis_options_.client_name = "shop-" + options_.context;
        redis_options_.wait_for_server = std::chrono::minutes{10}; // a Redis restart is waited out, not an error
        writer_ = std::make_unique<choreo::redis::connection>(io_.executor(), redis_options_);
        publisher_ = std::make_unique<choreo::redis::stream_publisher<>>(
            *writer_, choreo::redis::trim_policy{.max_length = 1'000'000, .approximate = true});
        if (options_.kafka_url.empty()) return;
#ifdef SHOP_WITH_KAFKA
        kafka_options_ = choreo::kafka::client_options::from_url(options_.kafka_url);
        kafka_options_.settings.emplace("client.id", "shop-" + options_.context + "." + options_.instance);
        // librdkafka's errors go to the log; its warnings (a coordinator still loading, a
        // broker connection retried) are routine here. With debug=... in the URL, all it says.
        kafka_options_.log = [context = options_.context, all = kafka_options_.settings.contains("debug")](
                                 int level, const std::string& facility, const std::string& message) {
            if (level <= 3 || all) fmt::print(stderr, "{}: kafka {}: {}\n", context, facility, message);
        };
        kafka_publisher_ = std::make_unique<choreo::kafka::producer<>>(kafka_options_);
#else
        throw std::invalid_argument("this shop was built without Kafka (choreo::kafka)");
#endif
    }
    ~event_transport() { stop(); }
    event_transport(const event_transport&) = delete;
    event_transport& operator=(const event_transport&) = delete;

    [[nodiscard]] const choreo::redis::connection_options& redis_options() const noexcept { return redis_options_; }
    // The connection for commands that answer at once (the saga store, replies).
    [[nodiscard]] choreo::redis::connection& writer() noexcept { return *writer_; }
    [[nodiscard]] choreo::redis::stream_publisher<>& publisher() noexcept { return *publisher_; }
    // A connection of its own, for a reader that blocks (the saga bridge).
    choreo::redis::connection& new_reader() {
        return *readers_.emplace_back(std::make_unique<choreo::redis::connection>(io_.executor(), redis_options_));
    }

    // A consumer of `stream` in consumer group `group`, handling `concurrency` entries of
    // different keys at once.
    choreo::redis::stream_consumer<>& add_consumer(std::string stream, std::string group, std::size_t concurrency = 1) {
        choreo::redis::stream_consumer_options c;
        c.concurrency = concurrency;
        c.stream = std::move(stream);
        c.group = std::move(group);
        c.consumer = options_.instance == "1" ? options_.context : options_.context + "." + options_.instance;
        c.block = std::chrono::milliseconds{200};
        c.retry_delay = std::chrono::milliseconds{200};
        c.max_deliveries = 20;
        c.on_dead_letter = [context = options_.context, stream = c.stream](const std::string& id,
                                                                           const std::string& why) {
            fmt::print(stderr, "{}: entry {} of {} dead-lettered: {}\n", context, id, stream, why);
        };
        consumers_.push_back(std::make_unique<choreo::redis::stream_consumer<>>(new_reader(), std::move(c)));
        return *consumers_.back();
    }

    // A consumer of the events of type E that `publishers` publish, in the group `group`: from
    // each publisher's Redis stream, or with --kafka from their Kafka topics.
    template <class E, class Handler>
    void consume(const std::vector<std::string>& publishers, const std::string& group, Handler handler) {
#ifdef SHOP_WITH_KAFKA
        if (kafka_publisher_) {
            choreo::kafka::consumer_options c;
            for (auto& publisher : publishers) {
                c.topics.push_back(events_topic(options_.prefix, publisher, choreo::event_type_name<E>()));
                (void)choreo::kafka::create_topic(kafka_options_, c.topics.back(), options_.kafka_partitions);
            }
            c.client = kafka_options_;
            c.group = events_topic(options_.prefix, "group", group); // a legal name for the step's group
            // One member of the group per process, reading every publisher's topic: two
            // members of one group in one process, each with a topic of its own, made every
            // join a rebalance of the other, and on a busy machine the group did not settle
            // within two minutes.
            // A static member (KIP-345): restarted after a crash, the process takes its
            // partitions back at once instead of waiting out the dead member's session,
            // and a dead member is noticed within six seconds (the broker's minimum).
            // A further instance (of the data platform) is a dynamic member instead: stopped,
            // it leaves the group at once and the first instance takes its partitions back
            // (a static member would hold them for the session's six seconds).
            if (options_.instance == "1") c.settings.emplace("group.instance.id", c.group);
            c.settings.emplace("session.timeout.ms", "6000");
            c.settings.emplace("heartbeat.interval.ms", "1000");
            c.retry_delay = std::chrono::milliseconds{200};
            c.max_attempts = 20;
            c.concurrency = 4; // the steps of different sagas side by side, as over Redis
            c.on_dead_letter = [context = options_.context](const std::string& record, const std::string& why) {
                fmt::print(stderr, "{}: record {} dead-lettered: {}\n", context, record, why);
            };
            kafka_consumers_.push_back(std::make_unique<choreo::kafka::consumer<>>(std::move(c)));
            kafka_consumers_.back()->template on<E>(std::move(handler));
            return;
        }
#endif
        for (auto& publisher : publishers)
            // The steps of different sagas side by side: a step mostly waits for Redis.
            add_consumer(events_stream(options_.prefix, publisher, choreo::event_type_name<E>()), group, 4)
                .template on<E>(handler);
    }

    // Every event E the context publishes leaves, once its transaction committed, through
    // `outbox` into E's stream (or topic). The relay hands its batch over and settles each
    // row by the transport's answer, with no thread of the bus waiting for it; Redis or
    // Kafka being away only delays the rows: they are retried.
    template <class E>
    void export_from(kernel::outbox& outbox) {
        choreo::durable::durable_options exported{.name = "redis/" + std::string{choreo::event_type_name<E>()},
                                                  .retry = {.immediate_retries = 0,
                                                            .delayed_retries = 100'000,
                                                            .initial_delay = std::chrono::milliseconds{50},
                                                            .backoff_multiplier = 2.0,
                                                            .max_delay = std::chrono::seconds{1},
                                                            .is_retryable = {}}};
#ifdef SHOP_WITH_KAFKA
        if (kafka_publisher_) {
            auto topic = events_topic(options_.prefix, options_.context, choreo::event_type_name<E>());
            (void)choreo::kafka::create_topic(kafka_options_, topic, options_.kafka_partitions);
            kafka_publisher_->prepare(topic); // its first event goes out at once
            // The row is delivered once Kafka acknowledged the record (its delivery report).
            outbox.subscribe_async<E>(
                [this, topic](const E& e, const choreo::envelope& env, choreo::durable::delivery_report report) {
                    kafka_publisher_->async_publish(topic, e, env, std::move(report));
                },
                std::move(exported));
            return;
        }
#endif
        auto stream = events_stream(options_.prefix, options_.context, choreo::event_type_name<E>());
        // The row is delivered once Redis answered the XADD.
        outbox.subscribe_async<E>(
            [this, stream](const E& e, const choreo::envelope& env, choreo::durable::delivery_report report) {
                publisher_->async_publish(stream, e, env,
                                          [report = std::move(report)](std::exception_ptr error, const std::string&) {
                                              report(std::move(error));
                                          });
            },
            std::move(exported));
    }

    // Serving means reading: the Kafka consumers first join their groups (a fresh broker
    // takes seconds to set up its group coordinator), then the Redis consumers (commands
    // among them) start.
    void start(stop_signal& stop) {
#ifdef SHOP_WITH_KAFKA
        for (auto& c : kafka_consumers_) c->start();
        auto since = std::chrono::steady_clock::now();
        bool told = false;
        for (auto& c : kafka_consumers_)
            while (!c->assigned() && !stop.raised() &&
                   std::chrono::steady_clock::now() < since + std::chrono::seconds{120}) {
                if (!told && std::chrono::steady_clock::now() > since + std::chrono::seconds{5}) {
                    fmt::print("{}: waiting for the Kafka consumer group {} to give it partitions\n", options_.context,
                               c->options().group);
                    std::fflush(stdout);
                    told = true;
                }
                (void)stop.wait_for(std::chrono::milliseconds{20}); // a stop ends the wait
            }
#else
        (void)stop;
#endif
        for (auto& c : consumers_) c->start();
    }

    void stop() {
        for (auto& c : consumers_) c->stop();
#ifdef SHOP_WITH_KAFKA
        for (auto& c : kafka_consumers_) c->stop();
#endif
    }

    // The events of other contexts this process handled or dead-lettered since it started.
    [[nodiscard]] std::uint64_t events_taken() const {
        std::uint64_t taken = 0;
        for (auto& c : consumers_)
            if (c->options().group != "commands") taken += c->handled() + c->dead_lettered();
#ifdef SHOP_WITH_KAFKA
        for (auto& c : kafka_consumers_) taken += c->handled() + c->dead_lettered();
#endif
        return taken;
    }

    // The hops of the events of other contexts this process took, stage by stage (the
    // commands are not hops between contexts).
    void add_hops_to(choreo::durable::hop_latency& all) const {
        for (auto& c : consumers_)
            if (c->options().group != "commands") all.add(c->hops());
#ifdef SHOP_WITH_KAFKA
        for (auto& c : kafka_consumers_) all.add(c->hops());
#endif
    }

    // What the Kafka consumers have still to handle; -1 while one cannot tell (its group is
    // forming or rebalancing, a broker is away); nothing without Kafka.
    [[nodiscard]] std::optional<std::int64_t> kafka_lag() const {
#ifdef SHOP_WITH_KAFKA
        if (kafka_consumers_.empty()) return std::nullopt;
        std::int64_t lag = 0;
        for (auto& c : kafka_consumers_) {
            auto left = c->lag();
            lag = !left || lag < 0 ? -1 : lag + *left;
        }
        return lag;
#else
        return std::nullopt;
#endif
    }

private:
    io_thread& io_;
    const serve_options& options_;
    choreo::redis::connection_options redis_options_;
    std::unique_ptr<choreo::redis::connection> writer_;
    std::vector<std::unique_ptr<choreo::redis::connection>> readers_;
    std::unique_ptr<choreo::redis::stream_publisher<>> publisher_;
    std::vector<std::unique_ptr<choreo::redis::stream_consumer<>>> consumers_;
#ifdef SHOP_WITH_KAFKA
    choreo::kafka::client_options kafka_options_;
    std::unique_ptr<choreo::kafka::producer<>> kafka_publisher_;
    std::vector<std::unique_ptr<choreo::kafka::consumer<>>> kafka_consumers_;
#endif
};

} // namespace shop::app
