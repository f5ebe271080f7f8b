#pragma once
/// @file
/// @brief Publishing events to Kafka through librdkafka: an idempotent producer whose
/// records are keyed by saga key (so one saga's events keep their order on one partition)
/// and carry the envelope in headers; a publish is done only when the broker acknowledged it.

#include <choreo/core/envelope.hpp>
#include <choreo/core/type_name.hpp>
#include <choreo/durable/codec.hpp>
#include <choreo/durable/json_codec.hpp>
#include <choreo/durable/wire.hpp>
#include <choreo/kafka/detail/client.hpp>
#include <choreo/kafka/errors.hpp>
#include <choreo/kafka/options.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace choreo::kafka {

/// @brief A record's header, name and value.
struct record_header {
    std::string name;  ///< the header's name
    std::string value; ///< its value, bytes
};

/// @brief Produces records (topic, key, value, headers) and reports each one's fate once.
///
/// Idempotent (`enable.idempotence=true`): a record retried by librdkafka is written once,
/// in order per partition. One produce request in flight per broker
/// (`max.in.flight.requests.per.connection=1`): with more, a new producer's first request
/// that a broker refused (a partition's leader not ready yet) was reported acknowledged
/// once a later one succeeded, and its records were lost (docs/decisions/0028).
/// `message.timeout.ms` is client_options::timeout, so a record the brokers do not
/// acknowledge by then is reported failed (errc::delivery_failed) and can be sent again.
/// Reports run on the producer's own polling thread. Thread-safe.
class record_producer {
public:
    /// @brief What to call with a record's fate: null when the broker acknowledged it.
    using delivery_handler = std::function<void(std::exception_ptr)>;

    /// @brief A producer for the cluster `options` names. Connects in the background;
    /// check_reachable() waits for a broker.
    explicit record_producer(client_options options) : options_(std::move(options)) {
        auto conf = detail::make_conf(options_, {{"enable.idempotence", "true"},
                                                 {"max.in.flight.requests.per.connection", "1"},
                                                 {"linger.ms", "0"},
                                                 {"message.timeout.ms", std::to_string(options_.timeout.count())}});
        rd_kafka_conf_set_opaque(conf.get(), this);
        rd_kafka_conf_set_dr_msg_cb(conf.get(), &record_producer::on_delivery);
        rd_kafka_conf_set_error_cb(conf.get(), &record_producer::on_error);
        if (options_.log) rd_kafka_conf_set_log_cb(conf.get(), &record_producer::on_log);
        handle_ = detail::make_handle(RD_KAFKA_PRODUCER, std::move(conf));
        poller_ = std::thread{[this] {
            while (!stopping_) rd_kafka_poll(handle_.get(), 100);
        }};
    }
    /// @brief Waits up to the timeout for records in flight; those still unacknowledged are
    /// reported failed (errc::closed), so no handler is left uncalled.
    ~record_producer() {
        rd_kafka_flush(handle_.get(), static_cast<int>(options_.timeout.count()));
        rd_kafka_purge(handle_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        stopping_ = true;
        poller_.join();
        for (int round = 0; round < 50 && rd_kafka_outq_len(handle_.get()) > 0; ++round)
            rd_kafka_poll(handle_.get(), 100);
    }
    record_producer(const record_producer&) = delete;
    record_producer& operator=(const record_producer&) = delete;

    /// @brief Throws kafka_error(errc::unreachable) unless a broker answers within the timeout.
    void check_reachable() { detail::check_reachable(handle_.get(), options_, options_.timeout); }

    /// @brief Looks `topic`'s partitions and leaders up now, so the first record sent to it
    /// goes out at once: otherwise librdkafka holds it until its next scan of unknown topics
    /// (up to a second). Throws kafka_error(errc::timeout) if the cluster's metadata has no
    /// such topic within the timeout.
    void prepare(const std::string& topic) {
        if (!detail::wait_for_topic(handle_.get(), topic, options_.timeout))
            throw kafka_error(errc::timeout, "topic '" + topic + "' is not in the cluster's metadata within " +
                                                 std::to_string(options_.timeout.count()) + " ms");
    }

    /// @brief Hands the record to librdkafka; `done` runs once with its fate. Throws
    /// kafka_error at once if it cannot even be queued (a fatal error, a full queue for the
    /// whole timeout, a topic name librdkafka refuses).
    void send(std::string_view topic, std::string_view key, std::string_view value,
              const std::vector<record_header>& headers, delivery_handler done) {
        if (auto fatal = fatal_error(); !fatal.empty()) throw kafka_error(errc::fatal, fatal);
        detail::headers_ptr h{rd_kafka_headers_new(headers.size())};
        for (auto& header : headers)
            rd_kafka_header_add(h.get(), header.name.data(), static_cast<ssize_t>(header.name.size()),
                                header.value.data(), static_cast<ssize_t>(header.value.size()));
        auto report = std::make_unique<delivery_handler>(std::move(done));
        std::string topic_name{topic};
        auto deadline = std::chrono::steady_clock::now() + options_.timeout;
        // rd_kafka_produceva rather than the RD_KAFKA_V_* macros, which are GNU statement
        // expressions (-Wpedantic refuses them under Clang).
        rd_kafka_vu_t fields[6];
        fields[0].vtype = RD_KAFKA_VTYPE_TOPIC;
        fields[0].u.cstr = topic_name.c_str();
        fields[1].vtype = RD_KAFKA_VTYPE_KEY;
        fields[1].u.mem = {const_cast<char*>(key.data()), key.size()};
        fields[2].vtype = RD_KAFKA_VTYPE_VALUE;
        fields[2].u.mem = {const_cast<char*>(value.data()), value.size()};
        fields[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
        fields[3].u.i = RD_KAFKA_MSG_F_COPY;
        fields[4].vtype = RD_KAFKA_VTYPE_HEADERS;
        fields[4].u.headers = h.get();
        fields[5].vtype = RD_KAFKA_VTYPE_OPAQUE;
        fields[5].u.ptr = report.get();
        for (;;) {
            const auto reports_before = reports();
            rd_kafka_error_t* refused = rd_kafka_produceva(handle_.get(), fields, 6);
            if (!refused) {
                (void)h.release(); // librdkafka owns the headers now
                (void)report.release();
                return;
            }
            auto err = rd_kafka_error_code(refused);
            std::string why = rd_kafka_error_string(refused);
            rd_kafka_error_destroy(refused);
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || std::chrono::steady_clock::now() > deadline)
                throw kafka_error(err == RD_KAFKA_RESP_ERR__FATAL ? errc::fatal : errc::delivery_failed,
                                  "cannot produce to topic '" + topic_name + "': " + why);
            // Every delivery report frees a place in the queue: wait for the next one.
            std::unique_lock lock{room_mutex_};
            room_.wait_until(lock, deadline, [&] { return reports_ != reports_before; });
        }
    }

    /// @brief As send(), and waits for the broker's acknowledgement; throws kafka_error if it
    /// did not come (errc::delivery_failed, or errc::timeout past the timeout).
    void send_and_wait(std::string_view topic, std::string_view key, std::string_view value,
                       const std::vector<record_header>& headers) {
        auto acknowledged = std::make_shared<std::promise<void>>();
        auto fate = acknowledged->get_future();
        send(topic, key, value, headers, [acknowledged](std::exception_ptr error) {
            if (error)
                acknowledged->set_exception(error);
            else
                acknowledged->set_value();
        });
        if (fate.wait_for(options_.timeout + std::chrono::seconds{5}) != std::future_status::ready)
            throw kafka_error(errc::timeout, "Kafka did not acknowledge a record on '" + std::string{topic} +
                                                 "' within " + std::to_string(options_.timeout.count()) + " ms");
        fate.get();
    }

    /// @brief Waits until every record handed over has its fate reported, up to `wait`;
    /// false if some are still in flight.
    bool flush(std::chrono::milliseconds wait) {
        return rd_kafka_flush(handle_.get(), static_cast<int>(wait.count())) == RD_KAFKA_RESP_ERR_NO_ERROR;
    }

    /// @brief The last error the client reported (a broker down, a fatal error), or empty.
    [[nodiscard]] std::string last_error() const {
        std::lock_guard lock{mutex_};
        return last_error_;
    }
    /// @brief The settings.
    [[nodiscard]] const client_options& options() const noexcept { return options_; }

private:
    // How many delivery reports came: a producer waiting for room in a full queue waits for it to move.
    std::uint64_t reports() {
        std::lock_guard lock{room_mutex_};
        return reports_;
    }

    static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
        if (auto* self = static_cast<record_producer*>(opaque)) {
            {
                std::lock_guard lock{self->room_mutex_};
                ++self->reports_;
            }
            self->room_.notify_all();
        }
        std::unique_ptr<delivery_handler> done{static_cast<delivery_handler*>(message->_private)};
        if (!done || !*done) return;
        std::exception_ptr error;
        if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            bool purged =
                message->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || message->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
            error = std::make_exception_ptr(
                kafka_error(purged ? errc::closed : errc::delivery_failed,
                            std::string{"Kafka did not acknowledge the record: "} + rd_kafka_err2str(message->err)));
        }
        try {
            (*done)(error);
        } catch (...) {
            // A handler's failure is its own; the other reports still run.
        }
    }

    static void on_log(const rd_kafka_t* k, int level, const char* facility, const char* message) {
        auto* self = static_cast<record_producer*>(rd_kafka_opaque(k));
        if (self && self->options_.log) self->options_.log(level, facility ? facility : "", message ? message : "");
    }

    static void on_error(rd_kafka_t* k, int err, const char* reason, void* opaque) {
        auto* self = static_cast<record_producer*>(opaque);
        std::string text = reason ? reason : "";
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
            char fatal[512];
            rd_kafka_fatal_error(k, fatal, sizeof fatal);
            text = std::string{"fatal: "} + fatal;
            std::lock_guard lock{self->mutex_};
            self->fatal_ = text;
        }
        std::lock_guard lock{self->mutex_};
        self->last_error_ = std::move(text);
    }

    std::string fatal_error() const {
        std::lock_guard lock{mutex_};
        return fatal_;
    }

    client_options options_;
    detail::handle_ptr handle_;
    std::thread poller_;
    std::atomic<bool> stopping_{false};
    mutable std::mutex mutex_;
    std::string last_error_, fatal_;
    std::mutex room_mutex_;
    std::condition_variable room_;
    std::uint64_t reports_ = 0;
};

/// @brief The envelope's headers of an event of type `type`.
[[nodiscard]] inline std::vector<record_header> envelope_headers(std::string_view type, int schema,
                                                                 const envelope& env) {
    std::vector<record_header> headers;
    for (auto& [name, value] : durable::wire_fields(type, schema, env))
        headers.push_back({std::string{name}, std::move(value)});
    return headers;
}

/// @brief Publishes events to Kafka topics, encoded with Codec (Boost.JSON by default): the
/// record's key is the saga key, its value the payload, its headers the envelope
/// (durable/wire.hpp). Thread-safe. As the delivery of a durable outbox listener, a row is
/// marked delivered only after the broker acknowledged its record.
template <class Codec = durable::json_codec>
class producer {
public:
    /// @brief A producer for the cluster `options` names.
    explicit producer(client_options options, Codec codec = {}, std::size_t max_payload = 1 << 20)
        : records_(std::move(options)), codec_(std::move(codec)), max_payload_(max_payload) {}

    /// @brief Publishes `event` to `topic` and waits for the broker. Throws kafka_error, or
    /// durable::codec_error for an event it cannot encode.
    template <class E>
    void publish(std::string_view topic, const E& event, const envelope& env) {
        records_.send_and_wait(topic, env.key.view(), encode(event), headers<E>(env));
    }

    /// @brief As publish(), without waiting: `done(error)` runs once the broker acknowledged
    /// the record (null) or it failed, on the producer's polling thread.
    template <class E>
    void async_publish(std::string_view topic, const E& event, const envelope& env,
                       record_producer::delivery_handler done) {
        records_.send(topic, env.key.view(), encode(event), headers<E>(env), std::move(done));
    }

    /// @brief See record_producer::prepare(): the first event to `topic` goes out at once.
    void prepare(const std::string& topic) { records_.prepare(topic); }

    /// @brief The producer of records beneath.
    [[nodiscard]] record_producer& records() noexcept { return records_; }

private:
    template <class E>
    std::string encode(const E& event) const {
        auto payload = codec_.encode(event);
        if (payload.size() > max_payload_)
            throw durable::codec_error(std::string{event_type_name<E>()} + " encodes to " +
                                       std::to_string(payload.size()) + " bytes, more than the " +
                                       std::to_string(max_payload_) + " allowed");
        return payload;
    }
    template <class E>
    static std::vector<record_header> headers(const envelope& env) {
        return envelope_headers(event_type_name<E>(), durable::schema_version_of<E>(), env);
    }

    record_producer records_;
    Codec codec_;
    std::size_t max_payload_;
};

} // namespace choreo::kafka
