#pragma once
/// @file
/// @brief Carries the saga layer's own broadcasts (saga_rolled_back, saga_ended) between
/// processes over a Redis stream, so participants in every process compensate and release
/// their markers, whichever process failed or ended the saga.

#include <choreo/core/bus.hpp>
#include <choreo/core/causation.hpp>
#include <choreo/redis/connection.hpp>
#include <choreo/redis/streams.hpp>
#include <choreo/saga/events.hpp>

#include <boost/describe/class.hpp>
#include <boost/describe/enum.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

/// @cond DESCRIBE
// What the JSON codec needs to carry the saga events; kept here, out of the saga layer.
namespace choreo::saga {
BOOST_DESCRIBE_ENUM(saga_status, running, completed, rolling_back, rolled_back)
BOOST_DESCRIBE_STRUCT(saga_ended, (), (key, outcome))

// A rollback is read leniently: from a process of an older version it comes without its
// steps (then every participant reads the saga's record, as before), and members a newer
// version adds are skipped.
inline void tag_invoke(boost::json::value_from_tag, boost::json::value& json, const saga_rolled_back& e) {
    boost::json::array steps;
    for (auto& s : e.steps) steps.emplace_back(s);
    json = {{"key", e.key}, {"reason", e.reason}, {"failed_step", e.failed_step}, {"steps", std::move(steps)}};
}
inline boost::json::result<saga_rolled_back> tag_invoke(boost::json::try_value_to_tag<saga_rolled_back>,
                                                        const boost::json::value& json) {
    const auto* object = json.if_object();
    if (!object) return boost::json::make_error_code(boost::json::error::not_object);
    saga_rolled_back e;
    for (auto [name, member] :
         {std::pair{"key", &e.key}, std::pair{"reason", &e.reason}, std::pair{"failed_step", &e.failed_step}}) {
        const auto* found = object->if_contains(name);
        if (!found || !found->is_string()) return boost::json::make_error_code(boost::json::error::not_string);
        *member = found->get_string();
    }
    if (const auto* steps = object->if_contains("steps")) {
        const auto* list = steps->if_array();
        if (!list) return boost::json::make_error_code(boost::json::error::not_array);
        for (auto& s : *list) {
            if (!s.is_string()) return boost::json::make_error_code(boost::json::error::not_string);
            e.steps.emplace_back(s.get_string());
        }
    }
    return e;
}
} // namespace choreo::saga
/// @endcond

namespace choreo::redis {

/// @brief Settings of a saga_bridge.
struct saga_bridge_options {
    std::string stream = "choreo:sagas"; ///< the stream every process of the application shares
    /// This process's consumer group on the stream: unique per process (every process must
    /// hear every broadcast), and the same after a restart (so it resumes where it stopped).
    std::string process;
    trim_policy trim{.max_length = 100'000, .approximate = true}; ///< bounds the stream
    std::chrono::milliseconds block{200};                         ///< one read's wait
    /// On destruction, how long broadcasts not yet appended (Redis away) may still be tried.
    std::chrono::milliseconds flush_timeout{5'000};
};

/// @brief Bridges saga_rolled_back and saga_ended between this process's bus and the other
/// processes of the application. A broadcast published here (by this process's runtime) is
/// appended to the shared stream; one appended by another process is published on this bus,
/// where this process's participants hear it as if it were local. Own broadcasts read back
/// from the stream are skipped, and a broadcast received is not sent out again.
///
/// Broadcasts leave in order from a thread of the bridge's own, so the runtime never waits
/// on Redis for them; while Redis is away they wait and are tried again (a broadcast whose
/// append was cut off may arrive twice, which participants ignore). A process that dies
/// with broadcasts not yet appended loses them: see docs/redis.md.
///
/// Needs two connections: `writer` for appending (may be shared), `reader` of its own for
/// the blocking reads (command_timeout longer than `block`). Start it after the
/// participants are created and before sagas start. Thread-safe.
class saga_bridge {
public:
    /// @brief A bridge for `bus`; nothing moves until start().
    saga_bridge(choreo::bus& bus, connection& writer, connection& reader, saga_bridge_options options)
        : bus_(bus), options_(std::move(options)), publisher_(writer, options_.trim),
          consumer_(reader, consumer_options(options_)) {
        if (options_.process.empty()) throw usage_error("a saga bridge needs this process's name");
        consumer_.on<saga::saga_rolled_back>(
            [this](const saga::saga_rolled_back& e, const envelope& env) { arrived(e, env); });
        consumer_.on<saga::saga_ended>([this](const saga::saga_ended& e, const envelope& env) { arrived(e, env); });
        outgoing_.push_back(bus_.subscribe<saga::saga_rolled_back>(
            [this](const saga::saga_rolled_back& e, const envelope& env) { departed(e, env); },
            {.name = "saga bridge: rollbacks to other processes", .when = phase::immediate}));
        outgoing_.push_back(bus_.subscribe<saga::saga_ended>(
            [this](const saga::saga_ended& e, const envelope& env) { departed(e, env); },
            {.name = "saga bridge: ends to other processes", .when = phase::immediate}));
        sender_ = std::thread{[this] { send_loop(); }};
    }
    ~saga_bridge() {
        stop();
        outgoing_.clear(); // nothing more to send once the sender is gone
        {
            std::lock_guard lock{mutex_};
            closing_ = true;
            flush_until_ = std::chrono::steady_clock::now() + options_.flush_timeout;
        }
        wake_.notify_all();
        sender_.join();
    }
    saga_bridge(const saga_bridge&) = delete;
    saga_bridge& operator=(const saga_bridge&) = delete;

    /// @brief Starts reading what other processes broadcast.
    void start() { consumer_.start(); }
    /// @brief Stops reading (broadcasts from here are still appended until destruction).
    void stop() { consumer_.stop(); }

    /// @brief Broadcasts received from other processes and published here.
    [[nodiscard]] std::uint64_t received() const noexcept { return received_.load(); }
    /// @brief Broadcasts of this process appended to the stream.
    [[nodiscard]] std::uint64_t sent() const noexcept { return sent_.load(); }
    /// @brief Failed appends, each tried again (Redis away).
    [[nodiscard]] std::uint64_t send_failures() const noexcept { return send_failures_.load(); }

private:
    static stream_consumer_options consumer_options(const saga_bridge_options& o) {
        stream_consumer_options c;
        c.stream = o.stream;
        c.group = o.process;
        c.consumer = o.process;
        c.block = o.block;
        return c;
    }

    // A broadcast of this process's runtime: out to the others, unless it just came in.
    template <class E>
    void departed(const E& event, const envelope& env) {
        if (relaying_) return;
        remember(env.id);
        {
            std::lock_guard lock{mutex_};
            outbox_.push_back([this, event, env] { publisher_.publish(options_.stream, event, env); });
        }
        wake_.notify_one();
    }

    // Appends the broadcasts in order; one that fails is tried again after a pause, until
    // it is appended or, once closing, the flush timeout passed.
    void send_loop() {
        auto pause = std::chrono::milliseconds{50};
        std::unique_lock lock{mutex_};
        for (;;) {
            wake_.wait(lock, [&] { return closing_ || !outbox_.empty(); });
            if (outbox_.empty()) return; // closing, all sent
            if (closing_ && std::chrono::steady_clock::now() > flush_until_) return;
            auto send = outbox_.front();
            lock.unlock();
            bool sent = false;
            try {
                send();
                sent = true;
            } catch (const std::exception&) {
                ++send_failures_;
            }
            lock.lock();
            if (sent) {
                outbox_.pop_front();
                ++sent_;
                pause = std::chrono::milliseconds{50};
            } else {
                wake_.wait_for(lock, pause);
                pause = std::min(pause * 2, std::chrono::milliseconds{1000});
            }
        }
    }

    // A broadcast read from the stream: published here unless it was ours.
    template <class E>
    void arrived(const E& event, const envelope& env) {
        if (was_ours(env.id)) return;
        causation_scope cause{env};
        relaying_ = true;
        try {
            bus_.publish(E{event}, env.key);
        } catch (...) {
            relaying_ = false;
            throw;
        }
        relaying_ = false;
        ++received_;
    }

    void remember(const event_id& id) {
        std::lock_guard lock{mutex_};
        ours_.insert(id.to_string());
        order_.push_back(id.to_string());
        if (order_.size() > 100'000) {
            ours_.erase(order_.front());
            order_.pop_front();
        }
    }
    bool was_ours(const event_id& id) {
        std::lock_guard lock{mutex_};
        return ours_.contains(id.to_string());
    }

    choreo::bus& bus_;
    saga_bridge_options options_;
    stream_publisher<> publisher_;
    stream_consumer<> consumer_;
    std::vector<choreo::connection> outgoing_;
    std::mutex mutex_;
    std::unordered_set<std::string> ours_;
    std::deque<std::string> order_;
    std::atomic<std::uint64_t> received_{0};
    std::atomic<std::uint64_t> sent_{0};
    std::atomic<std::uint64_t> send_failures_{0};
    std::condition_variable wake_;
    std::deque<std::function<void()>> outbox_; // broadcasts to append, oldest first
    bool closing_ = false;
    std::chrono::steady_clock::time_point flush_until_{};
    std::thread sender_; // last: started once everything else is in place
    static inline thread_local bool relaying_ = false;
};

} // namespace choreo::redis
