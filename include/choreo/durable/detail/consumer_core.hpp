#pragma once
/// @file
/// @brief What every transport's consumer does around its own read loop, so that the Redis
/// Streams and Kafka consumers have one shape: handlers registered per event type before
/// start, a thread that runs the loop until stop, each decoded record handed to its handler
/// with the outcome sorted (handled, dead-lettered, to be retried), and the counts. The
/// transport keeps what is its own: reading, acknowledging, and writing dead letters.

#include <choreo/core/errors.hpp>
#include <choreo/durable/detail/handler_table.hpp>
#include <choreo/durable/wire.hpp>

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace choreo::durable::detail {

/// @brief What became of a record handed to its handler.
struct handling {
    enum class result : std::uint8_t {
        handled,     ///< the handler returned: acknowledge the record
        dead_letter, ///< no handler, a wrong schema, or a choreo::permanent_error: `reason` says which
        retry,       ///< the handler threw: `reason` is what; deliver it again, or dead-letter it when out of attempts
    };
    result what = result::handled;
    std::string reason;
};

/// Thread-safe: on() and the counts from any thread, hand() from the loop's.
template <class Codec>
class consumer_core {
public:
    /// `kind` names the consumer in usage errors ("kafka::consumer").
    consumer_core(std::string kind, Codec codec) : kind_(std::move(kind)), codec_(std::move(codec)) {}
    ~consumer_core() { stop(); }
    consumer_core(const consumer_core&) = delete;
    consumer_core& operator=(const consumer_core&) = delete;

    /// @brief Handles events of type E: `handler(const E&, const envelope&)`. Before start only.
    template <class E, class Handler>
    void on(Handler handler) {
        std::lock_guard lock{mutex_};
        if (running_) throw usage_error(kind_ + "::on after start()");
        handlers_.template add<E>(std::move(handler), codec_);
    }

    /// @brief The first step of a transport's start(): false if it runs already. The
    /// transport then sets up (a group, a subscription) and calls launch(), or
    /// start_failed() if setting up threw.
    bool claim_start() {
        std::lock_guard lock{mutex_};
        if (running_) return false;
        running_ = true;
        stopping_ = false;
        return true;
    }
    void start_failed() noexcept {
        std::lock_guard lock{mutex_};
        running_ = false;
    }
    /// @brief Runs the transport's read loop on a thread of its own until stop().
    void launch(std::function<void()> loop) { thread_ = std::thread{std::move(loop)}; }

    /// @brief Asks the loop to stop and waits for it; true if it was running (the transport
    /// then closes what it opened). Idempotent.
    bool stop() {
        stopping_ = true;
        if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
        std::lock_guard lock{mutex_};
        return std::exchange(running_, false);
    }
    [[nodiscard]] bool stopping() const noexcept { return stopping_.load(); }

    /// @brief Hands `record` to the handler of its type; consumer group `group` is named in
    /// the refusal when there is none.
    handling hand(const wire_envelope& record, std::string_view group) {
        typename handler_table<Codec>::match handler;
        {
            std::lock_guard lock{mutex_};
            handler = handlers_.find(record, group);
        }
        if (!handler.run) return {handling::result::dead_letter, std::move(handler.refusal)};
        try {
            (*handler.run)(record);
            return {};
        } catch (const permanent_error& e) {
            return {handling::result::dead_letter, e.what()};
        } catch (const std::exception& e) {
            return {handling::result::retry, e.what()};
        } catch (...) {
            return {handling::result::retry, "a non-standard exception"};
        }
    }

    void count_handled(std::uint64_t n = 1) noexcept { handled_ += n; }
    void count_dead_letter() noexcept { ++dead_; }
    [[nodiscard]] std::uint64_t handled() const noexcept { return handled_.load(); }
    [[nodiscard]] std::uint64_t dead_lettered() const noexcept { return dead_.load(); }

private:
    std::string kind_;
    Codec codec_;
    std::mutex mutex_;
    handler_table<Codec> handlers_;
    bool running_ = false;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
    std::atomic<std::uint64_t> handled_{0};
    std::atomic<std::uint64_t> dead_{0};
};

} // namespace choreo::durable::detail
