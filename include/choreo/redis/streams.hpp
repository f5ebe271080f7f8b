#pragma once
/// @file
/// @brief Events over Redis Streams: a versioned envelope per entry, a publisher (XADD with
/// a trimming policy) and a consumer per consumer group that acknowledges an entry only
/// after its handler returned, retries, reclaims the entries of crashed consumers and moves
/// what cannot be handled to a dead-letter stream with the reason.

#include <choreo/core/envelope.hpp>
#include <choreo/core/errors.hpp>
#include <choreo/core/type_name.hpp>
#include <choreo/durable/codec.hpp>
#include <choreo/durable/consumer_base.hpp>
#include <choreo/durable/json_codec.hpp>
#include <choreo/durable/wire.hpp>
#include <choreo/redis/connection.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
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

/// @brief Settings of a stream_consumer.
struct stream_consumer_options {
    std::string stream;   ///< the stream to read
    std::string group;    ///< the consumer group: one per subscribing context
    std::string consumer; ///< this instance's name in the group (unique per process)
    /// Where undecodable entries and entries out of deliveries go, with the reason;
    /// "{stream}:dead" when empty.
    std::string dead_letter_stream;
    std::size_t batch = 128;                        ///< entries per XREADGROUP
    std::chrono::milliseconds block{200};           ///< how long one XREADGROUP waits for entries
    std::chrono::milliseconds retry_delay{500};     ///< a failed entry of ours is tried again after this
    std::chrono::milliseconds reclaim_idle{30'000}; ///< another consumer's entry idle this long is taken over
    unsigned max_deliveries = 5;                    ///< deliveries before an entry is dead-lettered
    std::size_t max_payload = 1 << 20;              ///< larger payloads are dead-lettered
    trim_policy dead_letter_trim{};                 ///< bounds the dead-letter stream
    /// Called with each entry moved to the dead-letter stream and the reason (for logs, metrics).
    std::function<void(const std::string& entry_id, const std::string& reason)> on_dead_letter{};
};

/// @brief Consumes one stream as one member of a consumer group, on a thread of its own.
///
/// Handlers are registered per event type before start(). Each entry is decoded (envelope
/// version, schema version, ids, payload size), decoded again into its type by the codec and
/// handed to the handler; the entry is acknowledged (XACK) only when the handler returned.
/// A handler makes its effect and records the event id in its inbox in one local
/// transaction, so a redelivered entry is recognised and skipped. An entry whose handler
/// threw is delivered again after `retry_delay`; after `max_deliveries`, or at once for a
/// choreo::permanent_error or an entry that cannot be decoded (garbage, an unknown type, a
/// wrong version, an oversized payload), it goes to the dead-letter stream with the reason,
/// and the consumer keeps going. Entries left pending by a consumer that crashed are taken
/// over after `reclaim_idle`.
///
/// The connection given is used for blocking reads: give the consumer a connection of its
/// own, whose command_timeout exceeds `block`.
template <class Codec = durable::json_codec>
class stream_consumer : public durable::consumer_base<Codec> {
    using base = durable::consumer_base<Codec>;

public:
    /// @brief A consumer on `redis` (its own connection, which must outlive it).
    stream_consumer(connection& redis, stream_consumer_options options, Codec codec = {})
        : base("stream_consumer", std::move(codec)), redis_(redis), options_(std::move(options)) {
        if (options_.stream.empty() || options_.group.empty() || options_.consumer.empty())
            throw usage_error("a stream consumer needs a stream, a group and a consumer name");
        if (redis_.options().command_timeout <= options_.block)
            throw usage_error("the consumer's connection must have a command_timeout longer than the block time");
        if (options_.dead_letter_stream.empty()) options_.dead_letter_stream = options_.stream + ":dead";
        if (options_.max_deliveries == 0) options_.max_deliveries = 1;
    }
    ~stream_consumer() { stop(); }

    /// @brief Creates the group if needed (reading from the stream's start) and starts reading.
    void start() {
        this->start_loop([this] { create_group(); }, [this] { loop(); });
    }

    /// @brief Stops after the current read (at most `block`) and the entries in hand.
    void stop() { this->stop_loop(); }

    /// @brief Failures of the read loop itself (Redis away); it keeps retrying.
    [[nodiscard]] std::uint64_t read_failures() const noexcept { return read_failures_.load(); }
    /// @brief The settings, with defaults filled in.
    [[nodiscard]] const stream_consumer_options& options() const noexcept { return options_; }

private:
    void create_group() {
        auto created = redis_.pipeline({{"XGROUP", "CREATE", options_.stream, options_.group, "0", "MKSTREAM"}})[0];
        if (created.is_error() && !created.text.starts_with("BUSYGROUP"))
            throw redis_error(errc::server_reply,
                              "cannot create consumer group " + options_.group + ": " + created.text);
    }

    void loop() {
        auto next_reclaim = std::chrono::steady_clock::now();
        while (!this->stopping()) {
            try {
                if (std::chrono::steady_clock::now() >= next_reclaim) {
                    reclaim();
                    next_reclaim =
                        std::chrono::steady_clock::now() + std::min(options_.retry_delay, options_.reclaim_idle);
                }
                auto r = read_next();
                if (r.is_nil()) continue;
                const auto received = std::chrono::system_clock::now();
                for (auto& stream : r.elements)
                    if (stream.elements.size() == 2)
                        for (auto& entry : stream.elements[1].elements) handle(entry, 1, received);
            } catch (const std::exception&) {
                ++read_failures_;
                (void)this->pause(std::min(options_.block, std::chrono::milliseconds{100})); // stop ends it
            }
        }
        // The last batch's acknowledgement, unless Redis is away: then its entries are
        // delivered again after a restart (and recognised by the handlers' inboxes).
        try {
            if (redis_.connected()) acknowledge();
        } catch (const std::exception&) {
            ++read_failures_;
        }
    }

    // The next XREADGROUP, with the acknowledgement of the batch before it in front, in one
    // round trip: Redis runs the XACK before the read blocks, so the entries are settled as
    // soon as without it, and a batch costs one round trip, not two.
    reply read_next() {
        const auto count = std::to_string(options_.batch);
        const auto block = std::to_string(options_.block.count());
        const std::vector<std::string_view> read{
            "XREADGROUP", "GROUP", options_.group, options_.consumer, "COUNT", count,
            "BLOCK",      block,   "STREAMS",      options_.stream,   ">"};
        if (to_ack_.empty()) return redis_.command(read);
        auto replies = redis_.pipeline({ack_command(), read});
        settled(replies[0]);
        replies[1].value();
        return std::move(replies[1]);
    }

    // Entries pending too long: ours after retry_delay (a handler failed), others' after
    // reclaim_idle (their consumer died). Out of deliveries: dead-lettered.
    void reclaim() {
        auto idle = std::min(options_.retry_delay, options_.reclaim_idle);
        auto pending = redis_.command({"XPENDING", options_.stream, options_.group, "IDLE",
                                       std::to_string(idle.count()), "-", "+", std::to_string(options_.batch)});
        for (auto& p : pending.elements) {
            if (p.elements.size() < 4) continue;
            const auto& id = p.elements[0].text;
            const auto& owner = p.elements[1].text;
            auto idle_ms = p.elements[2].integer;
            auto deliveries = static_cast<unsigned>(p.elements[3].integer);
            if (owner != options_.consumer && idle_ms < options_.reclaim_idle.count()) continue;
            auto claimed = redis_.command(
                {"XCLAIM", options_.stream, options_.group, options_.consumer, std::to_string(idle.count()), id});
            const auto received = std::chrono::system_clock::now();
            for (auto& entry : claimed.elements) {
                if (deliveries >= options_.max_deliveries) {
                    dead_letter(entry, "delivered " + std::to_string(deliveries) +
                                           " times without success: " + last_error(id));
                    continue;
                }
                handle(entry, deliveries + 1, received);
            }
        }
        acknowledge();
    }

    // One XACK for every entry handled or dead-lettered since the last one: after their
    // handlers returned, so a crash before it only means they are delivered again.
    void acknowledge() {
        if (to_ack_.empty()) return;
        settled(redis_.pipeline({ack_command()})[0]);
    }

    [[nodiscard]] std::vector<std::string_view> ack_command() const {
        std::vector<std::string_view> command{"XACK", options_.stream, options_.group};
        command.insert(command.end(), to_ack_.begin(), to_ack_.end());
        return command;
    }

    // The XACK's reply: the entries are settled (an error keeps them for the next one).
    void settled(const reply& answer) {
        answer.value();
        to_ack_.clear();
    }

    void handle(const reply& entry, unsigned delivery, std::chrono::system_clock::time_point received) {
        if (entry.elements.size() != 2 || entry.elements[0].type != reply::kind::string) return;
        const std::string& id = entry.elements[0].text;
        std::optional<stream_entry> decoded;
        try {
            decoded = detail::decode_entry(id, entry.elements[1], options_.max_payload);
        } catch (const entry_error& e) {
            return dead_letter(entry, e.what());
        }
        using result = durable::handling::result;
        auto outcome = this->hand(*decoded, options_.group, received);
        if (outcome.what == result::dead_letter) return dead_letter(entry, outcome.reason);
        if (outcome.what == result::retry) {
            if (delivery >= options_.max_deliveries)
                return dead_letter(entry, "delivered " + std::to_string(delivery) +
                                              " times without success: " + outcome.reason);
            remember_error(id, std::move(outcome.reason));
            return; // left pending: reclaim() delivers it again after retry_delay
        }
        to_ack_.push_back(id);
        this->count_handled();
        forget_error(id);
    }

    void dead_letter(const reply& entry, const std::string& reason) {
        const std::string& id = entry.elements.empty() ? std::string{} : entry.elements[0].text;
        std::vector<std::string> command{"XADD", options_.dead_letter_stream};
        if (options_.dead_letter_trim.max_length > 0) {
            command.emplace_back("MAXLEN");
            if (options_.dead_letter_trim.approximate) command.emplace_back("~");
            command.push_back(std::to_string(options_.dead_letter_trim.max_length));
        }
        command.insert(command.end(),
                       {"*", "reason", reason, "stream", options_.stream, "group", options_.group, "entry", id});
        if (entry.elements.size() == 2)
            for (auto& f : entry.elements[1].elements)
                if (f.type == reply::kind::string) command.push_back(f.text);
        if (command.size() % 2 != 0) command.emplace_back(); // a truncated entry: keep the pairs even
        redis_.command(detail::views(command));
        to_ack_.push_back(id);
        forget_error(id);
        this->count_dead_letter();
        if (options_.on_dead_letter) options_.on_dead_letter(id, reason);
    }

    void remember_error(const std::string& id, std::string what) {
        std::lock_guard lock{mutex_};
        errors_[id] = std::move(what);
    }
    void forget_error(const std::string& id) {
        std::lock_guard lock{mutex_};
        errors_.erase(id);
    }
    std::string last_error(const std::string& id) {
        std::lock_guard lock{mutex_};
        auto it = errors_.find(id);
        return it == errors_.end() ? std::string{"its consumer stopped before acknowledging it"} : it->second;
    }

    connection& redis_;
    stream_consumer_options options_;
    std::mutex mutex_; // errors_
    std::map<std::string, std::string> errors_;
    std::vector<std::string> to_ack_; // the read loop's thread only
    std::atomic<std::uint64_t> read_failures_{0};
};

} // namespace choreo::redis
