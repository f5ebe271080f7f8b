#pragma once
/// @file
/// @brief The shape every transport's consumer has (redis::stream_consumer, kafka::consumer):
/// handlers registered per event type before start, a thread that runs the transport's read
/// loop until stop, each decoded record handed to its handler with the outcome sorted
/// (handled, dead-lettered, to be retried), and the counts. The transport keeps what is its
/// own: reading, acknowledging, retrying and writing dead letters.

#include <choreo/core/errors.hpp>
#include <choreo/durable/detail/handler_table.hpp>
#include <choreo/durable/hop_latency.hpp>
#include <choreo/durable/wire.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace choreo::durable {

/// @brief What became of a record handed to its handler.
struct handling {
    /// @brief The outcome's kind.
    enum class result : std::uint8_t {
        handled,     ///< the handler returned: acknowledge the record
        dead_letter, ///< no handler, a wrong schema, or a choreo::permanent_error: `reason` says which
        retry,       ///< the handler threw: `reason` is what; deliver it again, or dead-letter it when out of attempts
    };
    result what = result::handled; ///< which outcome
    std::string reason;            ///< why, for dead_letter and retry
};

/// @brief The base of a transport's consumer. Thread-safe: on() and the counts from any
/// thread. Not copyable.
template <class Codec>
class consumer_base {
public:
    consumer_base(const consumer_base&) = delete;
    consumer_base& operator=(const consumer_base&) = delete;

    /// @brief Handles events of type E: `handler(const E&, const envelope&)`. Before start only.
    template <class E, class Handler>
    void on(Handler handler) {
        std::lock_guard lock{mutex_};
        if (running_) throw usage_error(kind_ + "::on after start()");
        handlers_.template add<E>(std::move(handler), codec_);
    }

    /// @brief Records handed to their handler that returned.
    [[nodiscard]] std::uint64_t handled() const noexcept { return handled_.load(); }
    /// @brief Records moved to the dead letters.
    [[nodiscard]] std::uint64_t dead_lettered() const noexcept { return dead_.load(); }
    /// @brief How long the records whose handler ran spent in each stage of their hop.
    [[nodiscard]] const hop_latency& hops() const noexcept { return hops_; }

protected:
    /// @brief `kind` names the consumer in usage errors ("kafka::consumer").
    consumer_base(std::string kind, Codec codec) : kind_(std::move(kind)), codec_(std::move(codec)) {}
    ~consumer_base() { stop_loop(); }

    /// @brief Starts once: `set_up()` (a group, a subscription; what it throws is thrown,
    /// and the consumer stays stopped), then `loop()` on a thread of its own until stop().
    /// Does nothing while running.
    template <class SetUp>
    void start_loop(SetUp&& set_up, std::function<void()> loop) {
        if (!claim_start()) return;
        try {
            std::forward<SetUp>(set_up)();
        } catch (...) {
            start_failed();
            throw;
        }
        launch(std::move(loop));
    }

private:
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
    void launch(std::function<void()> loop) { thread_ = std::thread{std::move(loop)}; }

protected:
    /// @brief Asks the loop to stop and waits for it; true if it was running (the transport
    /// then closes what it opened). Idempotent.
    bool stop_loop() {
        {
            std::lock_guard lock{pause_mutex_}; // a pause() between its check and its wait still wakes
            stopping_ = true;
        }
        paused_.notify_all();
        if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
        std::lock_guard lock{mutex_};
        return std::exchange(running_, false);
    }
    /// @brief Whether stop was asked for: the loop returns soon.
    [[nodiscard]] bool stopping() const noexcept { return stopping_.load(); }

    /// @brief Waits `delay` (a retry's delay, a back-off after a failed read), or until stop
    /// is asked for, which ends the wait at once; false when stopping.
    bool pause(std::chrono::milliseconds delay) {
        std::unique_lock lock{pause_mutex_};
        return !paused_.wait_for(lock, delay, [this] { return stopping_.load(); });
    }

    /// @brief Hands `record`, read at `received`, to the handler of its type; consumer group
    /// `group` is named in the refusal when there is none. A run of the handler counts in hops().
    handling hand(const wire_envelope& record, std::string_view group, std::chrono::system_clock::time_point received) {
        typename detail::handler_table<Codec>::match handler;
        {
            std::lock_guard lock{mutex_};
            handler = handlers_.find(record, group);
        }
        if (!handler.run) return {handling::result::dead_letter, std::move(handler.refusal)};
        const auto started = std::chrono::system_clock::now();
        try {
            (*handler.run)(record);
            hops_.record(record, received, started, std::chrono::system_clock::now());
            return {};
        } catch (const permanent_error& e) {
            return {handling::result::dead_letter, e.what()};
        } catch (const std::exception& e) {
            return {handling::result::retry, e.what()};
        } catch (...) {
            return {handling::result::retry, "a non-standard exception"};
        }
    }

    /// @brief Counts `n` records handled (acknowledged).
    void count_handled(std::uint64_t n = 1) noexcept { handled_ += n; }
    /// @brief Counts a record moved to the dead letters.
    void count_dead_letter() noexcept { ++dead_; }

private:
    std::string kind_;
    Codec codec_;
    std::mutex mutex_;
    detail::handler_table<Codec> handlers_;
    bool running_ = false;
    std::atomic<bool> stopping_{false};
    std::mutex pause_mutex_;
    std::condition_variable paused_;
    std::thread thread_;
    std::atomic<std::uint64_t> handled_{0};
    std::atomic<std::uint64_t> dead_{0};
    hop_latency hops_;
};

} // namespace choreo::durable
