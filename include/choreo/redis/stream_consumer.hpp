#pragma once
/// @file
/// @brief Events out of Redis Streams: a consumer per consumer group that acknowledges an
/// entry only after its handler returned, retries, reclaims the entries of crashed consumers,
/// moves what cannot be handled to a dead-letter stream with the reason, and can handle the
/// entries of different keys side by side.

#include <choreo/core/errors.hpp>
#include <choreo/durable/consumer_base.hpp>
#include <choreo/durable/detail/lane_pool.hpp>
#include <choreo/durable/json_codec.hpp>
#include <choreo/redis/connection.hpp>
#include <choreo/redis/stream_publisher.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace choreo::redis {

/// @brief Settings of a stream_consumer.
struct stream_consumer_options {
    std::string stream;   ///< the stream to read
    std::string group;    ///< the consumer group: one per subscribing context
    std::string consumer; ///< this instance's name in the group (unique per process)
    /// Where undecodable entries and entries out of deliveries go, with the reason;
    /// "{stream}:dead" when empty.
    std::string dead_letter_stream;
    std::size_t batch = 128; ///< entries per XREADGROUP
    /// Entries of a batch handled at once, on as many threads (the read loop's among them):
    /// entries of one key never at once, and in the stream's order. 1: one at a time.
    std::size_t concurrency = 1;
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
/// With `concurrency` above 1, the entries of a batch are spread over that many lanes by
/// their correlation key and the lanes run side by side: one key's entries in order on one
/// thread, handlers of different keys at once (so they must be thread-safe). The next batch
/// is read when every lane of this one is through.
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
        if (options_.concurrency == 0) options_.concurrency = 1;
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
        std::unique_ptr<durable::detail::lane_pool> lanes;
        if (options_.concurrency > 1) lanes = std::make_unique<durable::detail::lane_pool>(options_.concurrency);
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
                std::vector<const reply*> entries;
                for (auto& stream : r.elements)
                    if (stream.elements.size() == 2)
                        for (auto& entry : stream.elements[1].elements) entries.push_back(&entry);
                if (lanes && entries.size() > 1)
                    handle_side_by_side(entries, *lanes, received);
                else
                    for (auto* entry : entries) handle(*entry, 1, received);
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
        acknowledge(); // what was handled is not pending any more, however long its batch took
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

    // A batch's entries by key over the lanes, decoded here (an entry that cannot be is
    // dead-lettered at once), and the lanes run at once.
    void handle_side_by_side(const std::vector<const reply*>& entries, durable::detail::lane_pool& pool,
                             std::chrono::system_clock::time_point received) {
        struct decoded_entry {
            const reply* entry;
            stream_entry decoded;
        };
        std::vector<std::vector<decoded_entry>> lanes(pool.width());
        for (const reply* entry : entries) {
            auto decoded = decode(*entry);
            if (!decoded) continue;
            auto lane = durable::detail::lane_of(decoded->key, lanes.size());
            lanes[lane].push_back({entry, std::move(*decoded)});
        }
        std::vector<std::size_t> busy;
        for (std::size_t i = 0; i < lanes.size(); ++i)
            if (!lanes[i].empty()) busy.push_back(i);
        pool.run(busy, [&](std::size_t lane) {
            for (auto& e : lanes[lane]) handle_decoded(*e.entry, e.decoded, 1, received);
        });
    }

    void handle(const reply& entry, unsigned delivery, std::chrono::system_clock::time_point received) {
        if (auto decoded = decode(entry)) handle_decoded(entry, *decoded, delivery, received);
    }

    // The entry as a stream_entry; nothing for one that is not an entry, and nothing for one
    // that is not a valid envelope, which goes to the dead letters.
    std::optional<stream_entry> decode(const reply& entry) {
        if (entry.elements.size() != 2 || entry.elements[0].type != reply::kind::string) return std::nullopt;
        try {
            return detail::decode_entry(entry.elements[0].text, entry.elements[1], options_.max_payload);
        } catch (const entry_error& e) {
            dead_letter(entry, e.what());
            return std::nullopt;
        }
    }

    void handle_decoded(const reply& entry, const stream_entry& decoded, unsigned delivery,
                        std::chrono::system_clock::time_point received) {
        const std::string& id = decoded.id;
        using result = durable::handling::result;
        auto outcome = this->hand(decoded, options_.group, received);
        if (outcome.what == result::dead_letter) return dead_letter(entry, outcome.reason);
        if (outcome.what == result::retry) {
            if (delivery >= options_.max_deliveries)
                return dead_letter(entry, "delivered " + std::to_string(delivery) +
                                              " times without success: " + outcome.reason);
            remember_error(id, std::move(outcome.reason));
            return; // left pending: reclaim() delivers it again after retry_delay
        }
        settle(id);
        this->count_handled();
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
        settle(id);
        this->count_dead_letter();
        if (options_.on_dead_letter) options_.on_dead_letter(id, reason);
    }

    // To be acknowledged with the next XACK; any lane's thread.
    void settle(const std::string& id) {
        std::lock_guard lock{mutex_};
        to_ack_.push_back(id);
        errors_.erase(id);
    }

    void remember_error(const std::string& id, std::string what) {
        std::lock_guard lock{mutex_};
        errors_[id] = std::move(what);
    }
    std::string last_error(const std::string& id) {
        std::lock_guard lock{mutex_};
        auto it = errors_.find(id);
        return it == errors_.end() ? std::string{"its consumer stopped before acknowledging it"} : it->second;
    }

    connection& redis_;
    stream_consumer_options options_;
    std::mutex mutex_; // errors_, and to_ack_ while the lanes of a batch run
    std::map<std::string, std::string> errors_;
    std::vector<std::string> to_ack_; // read by the read loop when no lane runs
    std::atomic<std::uint64_t> read_failures_{0};
};

} // namespace choreo::redis
