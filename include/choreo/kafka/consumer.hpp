#pragma once
/// @file
/// @brief Consuming events from Kafka as one member of a consumer group: offsets are stored
/// only after the handler returned (its local transaction, with the inbox, committed), a
/// failing record is retried with a delay while the other keys of its partition go on, and
/// a record that cannot be handled goes to a dead-letter topic with the reason.

#include <choreo/core/envelope.hpp>
#include <choreo/core/errors.hpp>
#include <choreo/core/type_name.hpp>
#include <choreo/durable/consumer_base.hpp>
#include <choreo/durable/detail/lane_pool.hpp>
#include <choreo/durable/json_codec.hpp>
#include <choreo/durable/wire.hpp>
#include <choreo/kafka/detail/client.hpp>
#include <choreo/kafka/detail/key_lanes.hpp>
#include <choreo/kafka/detail/records.hpp>
#include <choreo/kafka/errors.hpp>
#include <choreo/kafka/options.hpp>
#include <choreo/kafka/producer.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace choreo::kafka {

/// @brief Consumes topics as one member of a consumer group, on a thread of its own.
///
/// Handlers are registered per event type before start(). Each record's envelope (its
/// headers) is checked, its value decoded by the codec, and the handler called; only when
/// the handler returned is the record's offset stored, and stored offsets are committed
/// every second, when partitions are revoked in a rebalance, and at stop(). A crash or a
/// rebalance therefore redelivers at most the records whose offsets were not committed: a
/// handler makes its effect and records the event id in its inbox in one local transaction,
/// so a redelivered record is recognised and skipped. A handler that throws is called again
/// after `retry_delay`; meanwhile the later records of its key (the saga key: the producer
/// partitions by it) wait behind it, and the partition's other keys go on, so order holds per
/// key and one failing key holds nothing else. A partition's offset is stored up to its
/// oldest record not done, so a crash redelivers the waiting records and those after them.
/// After `max_attempts`, or at once for a choreo::permanent_error or a record that cannot be
/// decoded (no envelope, an unknown type, a wrong version, an oversized payload), the record
/// goes to the dead-letter topic with the reason and the source's topic, partition and
/// offset, and its key moves on. A new group starts from the topics' earliest records.
///
/// Records are taken from the client in batches (up to `batch`, what has arrived). With
/// `concurrency` above 1 a batch's keys are spread over that many lanes and the lanes run
/// side by side: one key's records in order on one thread, handlers of different keys at
/// once (so they must be thread-safe); the next batch is taken when every lane is through.
template <class Codec = durable::json_codec>
class consumer : public durable::consumer_base<Codec> {
    using base = durable::consumer_base<Codec>;

public:
    /// @brief A consumer with `options`. Throws kafka_error(errc::bad_configuration) for
    /// settings librdkafka refuses, usage_error for missing topics or group.
    explicit consumer(consumer_options options, Codec codec = {})
        : base("kafka::consumer", std::move(codec)), options_(std::move(options)), dead_letters_(options_.client) {
        if (options_.topics.empty() || options_.group.empty())
            throw usage_error("a Kafka consumer needs at least one topic and a group");
        if (options_.max_attempts == 0) options_.max_attempts = 1;
        if (options_.batch == 0) options_.batch = 1;
        if (options_.concurrency == 0) options_.concurrency = 1;
        auto conf = detail::make_conf(options_.client,
                                      {{"group.id", options_.group},
                                       {"enable.auto.commit", "true"},
                                       {"auto.commit.interval.ms", "1000"},
                                       {"enable.auto.offset.store", "false"},
                                       {"auto.offset.reset", "earliest"},
                                       {"enable.partition.eof", "false"},
                                       // a topic subscribed to before it existed is
                                       // noticed within 10 s, not librdkafka's 5 min
                                       {"topic.metadata.refresh.interval.ms", "10000"}},
                                      options_.settings);
        rd_kafka_conf_set_opaque(conf.get(), &options_.client); // for its log function
        handle_ = detail::make_handle(RD_KAFKA_CONSUMER, std::move(conf));
        rd_kafka_poll_set_consumer(handle_.get());
    }
    ~consumer() { stop(); }

    /// @brief Joins the group and starts reading. Waits (up to the client's timeout) for the
    /// topics to be in the cluster's metadata first, so that the group's first assignment
    /// has their partitions; a topic that does not exist yet is noticed within 10 s of its
    /// creation (`topic.metadata.refresh.interval.ms`). Throws kafka_error(errc::unreachable)
    /// if no broker answers within the client's timeout.
    void start() {
        this->start_loop([this] { subscribe(); }, [this] { loop(); });
    }

    /// @brief Stops after the records in hand (a lane's later records are left to the
    /// group's next member, their offsets not stored), commits the stored offsets and leaves the
    /// group (its partitions go to the other members at once). Idempotent.
    void stop() {
        if (this->stop_loop() && handle_) rd_kafka_consumer_close(handle_.get());
    }

    /// @brief Errors the consumer met and kept going (a broker away, a topic not there yet).
    [[nodiscard]] std::uint64_t errors() const noexcept { return errors_.load(); }
    /// @brief The last of those errors, or empty.
    [[nodiscard]] std::string last_error() const {
        std::lock_guard lock{mutex_};
        return last_error_;
    }
    /// @brief The settings.
    [[nodiscard]] const consumer_options& options() const noexcept { return options_; }

    /// @brief Whether the group gave this member partitions (false before it joined, and
    /// during a rebalance). Thread-safe.
    [[nodiscard]] bool assigned() const {
        rd_kafka_topic_partition_list_t* partitions = nullptr;
        if (rd_kafka_assignment(handle_.get(), &partitions) != RD_KAFKA_RESP_ERR_NO_ERROR || !partitions) return false;
        bool any = partitions->cnt > 0;
        rd_kafka_topic_partition_list_destroy(partitions);
        return any;
    }

    /// @brief How many records of this member's partitions are not handled yet: each
    /// partition's high watermark as the last fetch saw it, less the next offset handled
    /// here or committed by the group. Nothing while the member has no partitions (the group
    /// is still forming or rebalancing), before a partition's first fetch, or when the
    /// group's committed offsets cannot be read within `wait`. Thread-safe.
    ///
    /// The watermarks are librdkafka's cached ones (a query to the broker would wait behind
    /// the long-polling fetch): a record appended a moment ago may not count yet, so a caller
    /// deciding that all is handled asks twice, a moment apart.
    [[nodiscard]] std::optional<std::int64_t> lag(std::chrono::milliseconds wait = std::chrono::seconds{2}) const {
        rd_kafka_topic_partition_list_t* assigned = nullptr;
        if (rd_kafka_assignment(handle_.get(), &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR || !assigned)
            return std::nullopt;
        std::unique_ptr<rd_kafka_topic_partition_list_t, decltype(&rd_kafka_topic_partition_list_destroy)> owned{
            assigned, &rd_kafka_topic_partition_list_destroy};
        if (assigned->cnt == 0) return std::nullopt;
        if (rd_kafka_committed(handle_.get(), assigned, static_cast<int>(wait.count())) != RD_KAFKA_RESP_ERR_NO_ERROR)
            return std::nullopt;
        std::int64_t total = 0;
        for (int i = 0; i < assigned->cnt; ++i) {
            const auto& p = assigned->elems[i];
            std::int64_t low = -1, high = -1;
            if (rd_kafka_get_watermark_offsets(handle_.get(), p.topic, p.partition, &low, &high) !=
                    RD_KAFKA_RESP_ERR_NO_ERROR ||
                high < 0)
                return std::nullopt; // not fetched yet
            std::int64_t next =
                p.offset >= 0 ? p.offset : std::max<std::int64_t>(low, 0); // nothing committed: the earliest
            {
                std::lock_guard lock{mutex_};
                if (auto it = next_.find({p.topic, p.partition}); it != next_.end()) next = std::max(next, it->second);
            }
            total += std::max<std::int64_t>(0, high - std::max(next, low));
        }
        return total;
    }

private:
    void subscribe() {
        detail::check_reachable(handle_.get(), options_.client, options_.client.timeout);
        // The group is joined once the topics are in the metadata (a topic another process
        // created a moment ago may not be yet): joined before, it would get no partitions of
        // them until the next metadata refresh. A topic still missing after the client's
        // timeout is subscribed to anyway, and noticed by a later refresh.
        auto deadline = std::chrono::steady_clock::now() + options_.client.timeout;
        for (auto& t : options_.topics)
            (void)detail::wait_for_topic(handle_.get(), t,
                                         std::max(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                      deadline - std::chrono::steady_clock::now()),
                                                  std::chrono::milliseconds{1}));
        auto* topics = rd_kafka_topic_partition_list_new(static_cast<int>(options_.topics.size()));
        for (auto& t : options_.topics) rd_kafka_topic_partition_list_add(topics, t.c_str(), RD_KAFKA_PARTITION_UA);
        auto err = rd_kafka_subscribe(handle_.get(), topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            throw kafka_error(errc::topic, std::string{"cannot subscribe to the topics: "} + rd_kafka_err2str(err));
    }

    using steady = std::chrono::steady_clock;
    struct record {
        std::unique_ptr<rd_kafka_message_t, decltype(&rd_kafka_message_destroy)> message;
        std::chrono::system_clock::time_point received;
    };
    enum class tried : std::uint8_t { done, again, stopped };

    void loop() {
        std::unique_ptr<durable::detail::lane_pool> pool;
        if (options_.concurrency > 1) pool = std::make_unique<durable::detail::lane_pool>(options_.concurrency);
        while (!this->stopping()) {
            auto wait = options_.poll; // shorter when a key's retry is due sooner
            if (!lanes_.empty())
                wait = std::clamp(std::chrono::ceil<std::chrono::milliseconds>(lanes_.earliest() - steady::now()),
                                  std::chrono::milliseconds{0}, options_.poll);
            // What has arrived, up to a batch: the first poll waits, the others do not.
            std::size_t taken = 0;
            for (auto* m = rd_kafka_consumer_poll(handle_.get(), static_cast<int>(wait.count())); m;
                 m = ++taken < options_.batch ? rd_kafka_consumer_poll(handle_.get(), 0) : nullptr) {
                record r{{m, &rd_kafka_message_destroy}, std::chrono::system_clock::now()};
                if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                    take(std::move(r));
                } else {
                    ++errors_;
                    std::lock_guard lock{mutex_};
                    last_error_ = rd_kafka_message_errstr(m);
                }
            }
            retry_due();
            run_ready(pool.get());
        }
    }

    // A record from the broker: ready to run in its key's turn, or queued behind the failed
    // record of its key.
    void take(record r) {
        const auto* m = r.message.get();
        detail::lane_id id{{rd_kafka_topic_name(m->rkt), m->partition}, std::string{detail::key_of(m)}};
        {
            std::lock_guard lock{progress_mutex_};
            progress_[id.where].taken(m->offset);
        }
        if (auto* waiting = lanes_.find(id)) return waiting->records.push_back(std::move(r));
        ready_[std::move(id)].records.push_back(std::move(r));
    }

    // The lanes whose retry is due join the ready ones.
    void retry_due() {
        if (lanes_.empty() || lanes_.earliest() > steady::now()) return;
        drop_revoked();
        for (auto& [id, lane] : lanes_.take_due(steady::now())) ready_.insert_or_assign(id, std::move(lane));
    }

    // Runs the ready lanes: one after the other, or on the pool, a key's lane on one thread.
    // A lane whose record fails waits for its retry.
    void run_ready(durable::detail::lane_pool* pool) {
        auto ready = std::exchange(ready_, {});
        if (!pool || ready.size() < 2) {
            for (auto& [id, lane] : ready)
                if (auto parked = run_lane(std::move(lane))) lanes_.put(id, std::move(*parked));
            return;
        }
        std::vector<std::vector<std::pair<const detail::lane_id*, detail::lane<record>*>>> threads(pool->width());
        for (auto& [id, lane] : ready)
            threads[durable::detail::lane_of(id.key, threads.size())].emplace_back(&id, &lane);
        std::vector<std::size_t> busy;
        for (std::size_t i = 0; i < threads.size(); ++i)
            if (!threads[i].empty()) busy.push_back(i);
        std::mutex parked_mutex;
        std::map<detail::lane_id, detail::lane<record>> parked;
        pool->run(busy, [&](std::size_t thread) {
            for (auto [id, lane] : threads[thread])
                if (auto waits = run_lane(std::move(*lane))) {
                    std::lock_guard lock{parked_mutex};
                    parked.insert_or_assign(*id, std::move(*waits));
                }
        });
        for (auto& [id, lane] : parked) lanes_.put(id, std::move(lane));
    }

    // Tries a key's records in order; the first that fails is returned with the rest of the
    // key behind it, to wait for its retry. Stopping, the rest is left to the next member.
    std::optional<detail::lane<record>> run_lane(detail::lane<record> lane) {
        while (!lane.records.empty()) {
            if (this->stopping()) return std::nullopt;
            auto outcome = try_record(lane.records.front(), lane.attempts + 1);
            if (outcome == tried::stopped) return std::nullopt; // not stored: the next member gets them
            if (outcome == tried::again) {
                ++lane.attempts;
                lane.next_try = steady::now() + options_.retry_delay;
                return lane;
            }
            lane.records.pop_front();
            lane.attempts = 0;
        }
        return std::nullopt;
    }

    // The keys waiting in partitions a rebalance took away are forgotten: their records were
    // not stored, so the partition's next owner gets them.
    void drop_revoked() {
        rd_kafka_topic_partition_list_t* assigned = nullptr;
        if (rd_kafka_assignment(handle_.get(), &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR || !assigned) return;
        std::set<detail::partition_id> mine;
        for (int i = 0; i < assigned->cnt; ++i) mine.insert({assigned->elems[i].topic, assigned->elems[i].partition});
        rd_kafka_topic_partition_list_destroy(assigned);
        lanes_.drop_unless([&](const detail::partition_id& p) { return mine.contains(p); });
        std::lock_guard lock{progress_mutex_};
        std::erase_if(progress_, [&](const auto& entry) { return !mine.contains(entry.first); });
    }

    tried try_record(const record& r, unsigned attempt) {
        auto* m = r.message.get();
        std::optional<durable::wire_envelope> decoded;
        try {
            decoded = detail::decode_record(m, options_.max_payload);
        } catch (const durable::envelope_error& e) {
            return dead_letter(m, e.what()) ? tried::done : tried::stopped;
        }
        using result = durable::handling::result;
        auto outcome = this->hand(*decoded, options_.group, r.received);
        if (outcome.what == result::handled) {
            finished(m);
            this->count_handled();
            return tried::done;
        }
        std::string reason = std::move(outcome.reason);
        if (outcome.what != result::dead_letter) {
            if (this->stopping()) return tried::stopped;
            if (attempt < options_.max_attempts) return tried::again;
            reason = "failed " + std::to_string(attempt) + " times: " + reason;
        }
        return dead_letter(m, reason) ? tried::done : tried::stopped;
    }

    // Done with the record (handled or dead-lettered): the partition's offset is stored up to
    // its oldest record not done yet, and committed with the next commit.
    void finished(rd_kafka_message_t* m) {
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        {
            // Stored under the lock, so that lanes finishing records of one partition at
            // once store its offsets in the order they move, never back.
            std::lock_guard lock{progress_mutex_};
            auto next = progress_[{rd_kafka_topic_name(m->rkt), m->partition}].done(m->offset);
            if (!next) return;
            {
                std::lock_guard next_lock{mutex_};
                auto& after = next_[{rd_kafka_topic_name(m->rkt), m->partition}];
                after = std::max(after, *next);
            }
            err = rd_kafka_offset_store(m->rkt, m->partition, *next - 1); // stores *next
        }
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) { // the partition was revoked meanwhile: its next owner redelivers
            ++errors_;
            std::lock_guard lock{mutex_};
            last_error_ = "cannot store the offset of " + detail::where(m) + ": " + rd_kafka_err2str(err);
        }
    }

    // Copies the record to the dead-letter topic with the reason and where it came from,
    // waits for the broker, then moves on. If that fails the record stays unstored and is
    // tried again after retry_delay: nothing is dropped.
    bool dead_letter(rd_kafka_message_t* m, const std::string& reason) {
        auto source = std::string{rd_kafka_topic_name(m->rkt)};
        auto topic = options_.dead_letter_topic.empty() ? source + ".dead" : options_.dead_letter_topic;
        auto headers = detail::dead_letter_headers(m, reason, options_.group);
        auto key = detail::key_of(m);
        auto value = detail::value_of(m);
        bool sent = false;
        while (!sent && !this->stopping()) {
            try {
                dead_letters_.send_and_wait(topic, key, value, headers);
                sent = true;
            } catch (const std::exception& e) {
                ++errors_;
                {
                    std::lock_guard lock{mutex_};
                    last_error_ = "cannot dead-letter " + detail::where(m) + ": " + e.what();
                }
                (void)this->pause(options_.retry_delay); // stop ends it, and the loop
            }
        }
        if (!sent) return false; // stopping: not stored, so the next member dead-letters it
        finished(m);
        this->count_dead_letter();
        if (options_.on_dead_letter) options_.on_dead_letter(detail::where(m), reason);
        return true;
    }

    consumer_options options_;
    record_producer dead_letters_;
    detail::handle_ptr handle_;
    mutable std::mutex mutex_; // next_ and last_error_
    std::map<std::pair<std::string, std::int32_t>, std::int64_t>
        next_; // per partition: the offset after the last handled
    std::atomic<std::uint64_t> errors_{0};
    std::string last_error_;
    std::mutex progress_mutex_; // progress_: a lane's thread finishes its records
    // What each partition took and finished.
    std::map<detail::partition_id, detail::partition_progress> progress_;
    // The read loop's thread only: the keys waiting for a retry, the keys ready to run.
    detail::key_lanes<record> lanes_;
    std::map<detail::lane_id, detail::lane<record>> ready_;
};

} // namespace choreo::kafka
